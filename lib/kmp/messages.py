# KMP application layer: GetType, GetSerialNo and GetRegister payloads (the bytes after the CID).
# Register records are matched by their register id, never by position: a meter silently omits
# registers it does not support.

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


from kmp.errors import LengthError, RequestError
from kmp.frame import MAX_REGISTERS_PER_REQUEST
from kmp.value import decode_value, encode_value, format_decimal

# Unit codes of the clock and date formats. Defined here, not in kmp.units, so that reading
# registers does not load the unit-name table; kmp.units re-exports them.
CLOCK = const(47)  # hh:mm:ss as decimal hhmmss
DATE_YYMMDD = const(48)
DATE_YYYYMMDD = const(49)
DATE_MMDD = const(50)

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

    @property
    def siex(self):
        b = self.exponent if self.exponent >= 0 else 0x40 | -self.exponent
        return b | 0x80 if self.mantissa < 0 else b

    def unit_name(self):
        from kmp import units

        return units.unit_name(self.unit)

    def text(self):
        """Exact decimal text of the value, e.g. '12.345'."""
        return format_decimal(self.mantissa, self.exponent)

    def _whole(self):
        if self.exponent < 0 or self.mantissa < 0:
            return None
        return self.mantissa * 10**self.exponent

    def clock(self):
        """(h, m, s) for unit 47 (decimal hhmmss), None when not a valid time of day."""
        v = self._whole()
        if self.unit != CLOCK or v is None:
            return None
        h, m, s = v // 10000, v // 100 % 100, v % 100
        if h > 23 or m > 59 or s > 59:
            return None
        return h, m, s

    def date(self):
        """(year, month, day) for units 48/49, (month, day) for unit 50; None when invalid."""
        v = self._whole()
        if v is None:
            return None
        if self.unit == DATE_MMDD:
            m, d = v // 100, v % 100
            return (m, d) if _valid_month_day(m, d) else None
        if self.unit == DATE_YYMMDD:
            if v > 999999:
                return None
            y = 2000 + v // 10000
        elif self.unit == DATE_YYYYMMDD:
            y = v // 10000
        else:
            return None
        m, d = v // 100 % 100, v % 100
        return (y, m, d) if _valid_month_day(m, d) else None

    def __repr__(self):
        return "Register(0x%04X, %s %s)" % (self.rid, self.text(), self.unit_name())


def _valid_month_day(m, d):
    return 1 <= m <= 12 and 1 <= d <= 31


def parse_registers(data):
    """Records of a GetRegister response payload, in the order the meter sent them."""
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
        records.append(Register(rid, unit, nob, mantissa, exponent))
    return records


def parse_register_request(data):
    """Register ids of a GetRegister request payload (used by the meter simulator)."""
    if len(data) < 1:
        raise LengthError("GetRegister request: missing register count")
    count = data[0]
    if not 1 <= count <= MAX_REGISTERS_PER_REQUEST:
        raise RequestError("GetRegister request: count %d, expected 1..8" % count)
    if len(data) != 1 + 2 * count:
        raise LengthError(
            "GetRegister request: %d register(s) need %d byte(s), got %d"
            % (count, 1 + 2 * count, len(data))
        )
    return [(data[1 + 2 * k] << 8) | data[2 + 2 * k] for k in range(count)]


def encode_register(rid, unit, mantissa, exponent, nob=None):
    """One register record as a meter sends it: RID, unit, [NoB][SiEx][integer]."""
    return bytes((rid >> 8, rid & 0xFF, unit)) + encode_value(mantissa, exponent, nob)


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


# Meter types from GetType as documented for the MULTICAL 601 (DOC section 6.2.1); other meters
# report their own codes, shown in hex.
_METER_TYPES = {
    0x0001: "MULTICAL 601 (Pt500)",
    0x0004: "MULTICAL 601 (Pt100)",
    0x0005: "MULTICAL 601 (Pt500, 4-wire)",
    0x1501: "MULTICAL 601 (Pt500) via 67-05",
    0x1504: "MULTICAL 601 (Pt100) via 67-05",
    0x1505: "MULTICAL 601 (Pt500, 4-wire) via 67-05",
}


def meter_type_name(meter_type):
    return _METER_TYPES.get(meter_type) or "Kamstrup meter type 0x%04X" % meter_type
