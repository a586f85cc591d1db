# A minimal scripted meter for link tests: answers GetType, GetSerialNo and GetRegister from a
# fixed register table, with optional echo and latency. (The full virtual MULTICAL with evolving
# values and fault injection is tools/virtual_meter.py.)

from fake_clock import FakeClock
from fake_uart import FakeUart
from kmp import frame, messages, strict
from kmp.link import MeterLink


class SimpleMeter:
    def __init__(self, values, serial=12345678, meter_type=0x0050, sw=0x0201, echo=False,
                 latency_ms=50, address=0x3F, silent=None, stray=b""):  # fmt: skip
        self.values = values  # rid -> (unit, mantissa, exponent)
        self.serial = serial
        self.meter_type = meter_type
        self.sw = sw
        self.echo = echo
        self.latency_ms = latency_ms
        self.address = address
        self.asleep = False
        self.silent = silent  # silent(rids) -> True: no reply to that GetRegister request
        self.stray = stray  # bytes sent just before each answer (e.g. a stray 0x06)
        self.requests = []  # rid lists of GetRegister requests seen

    def __call__(self, wire):
        out = [(0, wire)] if self.echo else []
        if self.asleep:
            return out
        f = strict.decode_frame(wire, frame.START_TO_METER)
        if f.address != self.address:
            return out
        if f.cid == frame.CID_GET_TYPE:
            data = bytes(
                (self.meter_type >> 8, self.meter_type & 0xFF, self.sw >> 8, self.sw & 0xFF)
            )
        elif f.cid == frame.CID_GET_SERIAL:
            data = self.serial.to_bytes(4, "big")
        else:
            rids = messages.parse_register_request(f.data)
            self.requests.append(rids)
            if self.silent is not None and self.silent(rids):
                return out
            data = b"".join(
                messages.encode_register(rid, *self.values[rid])
                for rid in rids
                if rid in self.values
            )
        resp = self.stray + frame.encode_frame(f.address, f.cid, data, frame.START_FROM_METER)
        out.append((self.latency_ms, resp))
        return out


# The seven ESPHome sensors and a register table for link tests on CPython and MicroPython.
SEVEN = [0x3C, 0x50, 0x56, 0x57, 0x59, 0x4A, 0x44]
VALUES = {
    0x3C: (8, 123456789, -3),
    0x50: (22, 123, -1),
    0x56: (37, 6512, -2),
    0x57: (37, 4012, -2),
    0x59: (38, 2500, -2),
    0x4A: (41, 456, 0),
    0x44: (40, 1234567, -2),
    0x3EC: (46, 7126, 0),
    0x63: (0, 0, 0),
}


def make(meter=None, byte_ms=None, **kw):
    """(clock, uart, meter, link): a MeterLink on a fake UART and clock, SimpleMeter behind."""
    clock = FakeClock()
    meter = meter or SimpleMeter(dict(VALUES))
    uart = FakeUart(clock, meter, byte_ms=byte_ms)
    return clock, uart, meter, MeterLink(uart, clock=clock, **kw)
