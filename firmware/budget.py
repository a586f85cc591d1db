# The meter's read budget (meter.read_budget: exchanges a day). Kamstrup rates a MULTICAL 403's
# battery life for "max. one reading per hour" (technical description, section 10.4): 24
# exchanges a day is the default, 0 means no budget (a mains-supplied meter). Every request
# frame counts: identity, retries, re-asks for a missing register.
#
# A setup window (the first 15 minutes after boot, and after a read_now command) reads every
# update_interval, so a new user sees values at once and can position the head; what it costs
# is counted but not charged to the budget. After it the node reads at the slower of
# update_interval and what the budget allows, and never lets the exchanges charged in the last
# 24 hours go past the budget (a retry or a re-identify is paid for by a later read).
#
# Exchanges are kept per hour in 24 buckets (the current hour and the 23 before it), on the
# node's seconds clock: uptime on a mains node; on a battery node the seconds since the cold
# start, which run on across deep sleep (rtcstate keeps the buckets).

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


HOURS = const(24)
SETUP_S = const(900)
DAY_S = const(86400)
REGISTERS_PER_REQUEST = const(8)  # GetRegister takes at most 8 (KMP doc 5512-447, 6.2.4)


def requests_per_read(n_registers):
    """GetRegister requests one read of n registers takes."""
    return (n_registers + REGISTERS_PER_REQUEST - 1) // REGISTERS_PER_REQUEST


class ReadBudget:
    def __init__(self, per_day):
        self.per_day = per_day  # 0: no budget
        self.hour = 0  # the hour (seconds // 3600) the newest bucket is for
        self.charged = [0] * HOURS  # exchanges charged to the budget, per hour
        self.spent = [0] * HOURS  # every exchange, setup window included, per hour
        self.setup_until = SETUP_S  # seconds: until then reads follow update_interval
        self.held = 0  # reads held back because the budget was used up

    def saved(self):
        """What RTC memory keeps across deep sleep (rtcstate's budget block)."""
        return (self.hour, self.setup_until, self.held, list(self.charged), list(self.spent))

    def restore(self, saved):
        self.hour, self.setup_until, self.held, self.charged, self.spent = saved

    def _roll(self, now_s):
        hour = now_s // 3600
        gap = hour - self.hour
        if gap < 0 or gap >= HOURS:  # a day gone by (or a clock that restarted): all new
            for i in range(HOURS):
                self.charged[i] = self.spent[i] = 0
        else:
            for i in range(1, gap + 1):
                at = (self.hour + i) % HOURS
                self.charged[at] = self.spent[at] = 0
        self.hour = hour

    def count(self, exchanges, now_s):
        """Record exchanges made at now_s (charged unless in the setup window)."""
        if exchanges <= 0:
            return
        self._roll(now_s)
        at = self.hour % HOURS
        self.spent[at] += exchanges
        if not self.in_setup(now_s):
            self.charged[at] += exchanges

    def used(self, now_s):
        """Exchanges charged to the budget in the last 24 hours."""
        self._roll(now_s)
        return sum(self.charged)

    def exchanges(self, now_s):
        """Every exchange in the last 24 hours, setup window included."""
        self._roll(now_s)
        return sum(self.spent)

    def in_setup(self, now_s):
        return now_s < self.setup_until

    def open_setup(self, now_s):
        """A new setup window from now (a read_now command, alignment)."""
        if now_s + SETUP_S > self.setup_until:
            self.setup_until = now_s + SETUP_S

    def setup_left_s(self, now_s):
        return max(0, self.setup_until - now_s)

    def allows(self, exchanges, now_s):
        """True when a read of that many exchanges may go to the meter now."""
        if self.per_day == 0 or self.in_setup(now_s):
            return True
        return self.used(now_s) + exchanges <= self.per_day

    def interval_s(self, update_interval, per_read, align=False):
        """Seconds between reads outside the setup window: update_interval, or longer where
        per_read exchanges a read would go past the budget. align: a whole fraction of a day
        (reads at wall-clock multiples stay on the same times every day)."""
        if self.per_day == 0:
            return update_interval
        need = (DAY_S * per_read + self.per_day - 1) // self.per_day
        if need <= update_interval:
            return update_interval
        if align:
            parts = DAY_S // need  # the most reads a day that keep need apart
            while DAY_S % parts:
                parts -= 1
            need = DAY_S // parts
        return need
