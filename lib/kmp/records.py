# What the node decodes from the meter: GetRegister records, GetType and GetSerialNo payloads.
# Register records are matched by their register id, never by position: a meter silently omits
# registers it does not support. (kmp.messages adds what tools and the simulator need: dates,
# clock times, meter type names, encoding; the node does not load it.)

from kmp.errors import LengthError
from kmp.value import decode_value, format_decimal

# Smallest record: RID (2) + unit (1) + NoB (1) + SiEx (1) + one value byte.
_MIN_RECORD = 6


class Register:
    """One register record from a GetRegister response."""

    def __init__(self, rid, unit, nob, mantissa, exponent):
        self.rid = rid
        self.unit = unit
        self.nob = nob
        self.mantissa = mantissa
        self.exponent = exponent

    def text(self):
        """Exact decimal text of the value, e.g. '12.345'."""
        return format_decimal(self.mantissa, self.exponent)

    def unit_name(self):
        from kmp import units

        return units.unit_name(self.unit)


def parse_registers(data, make=Register):
    """Records of a GetRegister response payload, in the order the meter sent them; each made
    by make(rid, unit, nob, mantissa, exponent)."""
    records = []
    i = 0
    n = len(data)
    while i < n:
        if n - i < _MIN_RECORD:
            raise LengthError(
                "register record: %d byte(s) left, need at least %d" % (n - i, _MIN_RECORD)
            )
        rid = (data[i] << 8) | data[i + 1]
        unit = data[i + 2]
        try:
            mantissa, exponent, nob, i = decode_value(data, i + 3)
        except LengthError as e:
            raise LengthError("register 0x%04X: %s" % (rid, e))
        records.append(make(rid, unit, nob, mantissa, exponent))
    return records


def sw_revision_text(raw):
    """SW revision u16 -> 'F1' (letter, number); None for 0 (not available)."""
    if raw == 0:
        return None
    letter, number = raw >> 8, raw & 0xFF
    if 1 <= letter <= 26:
        return chr(0x40 + letter) + str(number)
    return "0x%04X" % raw


def parse_type(data):
    """GetType payload -> (meter_type u16, software revision text or None)."""
    if len(data) != 4:
        raise LengthError("GetType response: expected 4 data bytes, got %d" % len(data))
    return (data[0] << 8) | data[1], sw_revision_text((data[2] << 8) | data[3])


def parse_serial(data):
    """GetSerialNo payload -> serial number (u32 big-endian)."""
    if len(data) != 4:
        raise LengthError("GetSerialNo response: expected 4 data bytes, got %d" % len(data))
    return (data[0] << 24) | (data[1] << 16) | (data[2] << 8) | data[3]
