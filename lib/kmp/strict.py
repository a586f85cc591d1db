# Strict decoding of one complete wire frame and unstuffing, for tools, the meter simulator and
# tests. The node never needs it (kmp.frame's FrameAssembler reads responses as they arrive),
# so it lives apart and stays out of the ESP32's RAM.

from kmp.errors import FrameError
from kmp.frame import (
    ACK,
    ESCAPE,
    START_FROM_METER,
    START_TO_METER,
    STOP,
    FrameAssembler,
    is_reserved,
)


def unstuff(data):
    """Reverse of stuff(); rejects an escape at the end or one that does not yield a reserved byte."""
    out = bytearray()
    escaped = False
    for b in data:
        if escaped:
            _check_escaped(b)
            out.append(b ^ 0xFF)
            escaped = False
        elif b == ESCAPE:
            escaped = True
        else:
            out.append(b)
    if escaped:
        raise FrameError("escape byte 0x1B at the end of the data: truncated")
    return bytes(out)


def _check_escaped(b):
    if not is_reserved(b ^ 0xFF):
        raise FrameError(
            "invalid escape 1B %02X: expected the complement of 06/0D/1B/40/80, got 0x%02X"
            % (b, b ^ 0xFF)
        )


class Frame:
    """A decoded frame from decode_frame(). ack frames have address/cid None and empty data."""

    def __init__(self, start, address, cid, data, ack=False):
        self.start = start
        self.address = address
        self.cid = cid
        self.data = data
        self.ack = ack


def decode_frame(raw, start=None, address=None, cid=None):
    """Strictly decode one complete wire frame (no leading garbage, no trailing bytes).

    start: START_FROM_METER or START_TO_METER to require a direction, None to accept either.
    """
    n = len(raw)
    if n == 1 and raw[0] == ACK:
        return Frame(None, None, None, b"", ack=True)
    if n < 2:
        raise FrameError("truncated frame: %d byte(s), need at least start and stop" % n)
    first = raw[0]
    if start is None:
        if first != START_FROM_METER and first != START_TO_METER:
            raise FrameError("start byte: expected 0x40 or 0x80, got 0x%02X" % first)
        start = first
    elif first != start:
        raise FrameError("start byte: expected 0x%02X, got 0x%02X" % (start, first))
    if raw[n - 1] != STOP:
        raise FrameError("stop byte: expected 0x0D, got 0x%02X" % raw[n - 1])
    for i in range(1, n - 1):
        if raw[i] == start:
            raise FrameError(
                "start byte 0x%02X repeated inside the frame at offset %d" % (start, i)
            )
    asm = FrameAssembler(start=start)
    asm.expect(address, cid)
    used = asm.feed(raw)
    if not asm.done or used != n:
        raise FrameError("frame not complete after %d of %d bytes" % (used, n))
    return Frame(start, asm.address, asm.cid, bytes(asm.payload()))
