# KMP application layer: GetType, GetSerialNo and GetRegister payloads (the bytes after the CID),
# the whole of it for tools, the meter simulator and tests. The node reads responses with the
# leaner kmp.records, which this module builds on: its Register adds dates, clock times and the
# SiEx byte; parse_registers makes those.

from kmp import records
from kmp.errors import LengthError, RequestError
from kmp.frame import MAX_REGISTERS_PER_REQUEST
from kmp.meters import meter_type_name  # noqa: F401  (the full API)
from kmp.records import parse_serial, parse_type, sw_revision_text  # noqa: F401  (the full API)
from kmp.units import CLOCK, DATE_MMDD, DATE_YYMMDD, DATE_YYYYMMDD
from kmp.value import encode_value


class Register(records.Register):
    """One register record, with what tools show of it."""

    @property
    def siex(self):
        b = self.exponent if self.exponent >= 0 else 0x40 | -self.exponent
        return b | 0x80 if self.mantissa < 0 else b

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
    return records.parse_registers(data, Register)


def check_plain_request(cid, data):
    """GetType (0x01) and GetSerialNo (0x02) requests carry no data (KMP 6.2.1, 6.2.2)."""
    if data:
        raise RequestError(
            "%s request: expected no data bytes, got %d"
            % ("GetType" if cid == 0x01 else "GetSerialNo", len(data))
        )


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
