# Totals never go backwards. Home Assistant books a decrease of a total_increasing sensor as a
# new meter cycle, so one bad read of E1 would count a whole meter's worth of consumption
# (DISCOVERY.md 2.3). A lower reading is held back (published as null); only CONFIRM_READS
# consecutive lower, non-decreasing reads are accepted as a meter replacement.

CONFIRM_READS = 3


def compare(a, b):
    """Compare exact decimals given as (mantissa, exponent): -1, 0 or 1."""
    (ma, ea), (mb, eb) = a, b
    if ea > eb:
        ma *= 10 ** (ea - eb)
    elif eb > ea:
        mb *= 10 ** (eb - ea)
    return (ma > mb) - (ma < mb)


class TotalsGuard:
    def __init__(self, confirm=CONFIRM_READS):
        self.confirm = confirm
        self.last = {}  # id -> (mantissa, exponent) last accepted value
        self._lower = {}  # id -> [(mantissa, exponent) newest lower read, count]
        self.held = 0  # readings held back since boot (reported in diag)
        self.replacements = 0

    def forget(self):
        """A new meter (another serial): its totals start where they are, not where the old
        meter's were."""
        self.last = {}
        self._lower = {}
        self.replacements += 1

    def accept(self, key, mantissa, exponent):
        """True if this total may be published; False to hold it back."""
        value = (mantissa, exponent)
        last = self.last.get(key)
        if last is None or compare(value, last) >= 0:
            self.last[key] = value
            self._lower.pop(key, None)
            return True
        pending = self._lower.get(key)
        if pending is not None and compare(value, pending[0]) >= 0:
            pending[0] = value
            pending[1] += 1
        else:
            pending = [value, 1]
            self._lower[key] = pending
        if pending[1] >= self.confirm:
            # The lower value held for CONFIRM_READS reads in a row: a new meter.
            self.last[key] = value
            del self._lower[key]
            self.replacements += 1
            return True
        self.held += 1
        return False
