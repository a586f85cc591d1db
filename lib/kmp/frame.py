# KMP data-link and physical layer: CRC-16/XMODEM, byte stuffing, request frames and a
# receive-side assembler that can be fed bytes as they arrive from the optical head. (Strict
# decoding of one whole frame, for tools and the simulator, is kmp/strict.py.)
#
# Wire frame: [start][dst][CID][data...][CRC hi][CRC lo][stop]; CRC over dst..data (unstuffed),
# then every reserved byte in dst..CRC is sent as 1B, ~byte. (PROTOCOL.md sections 1-2)

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


from kmp.errors import AddressError, CidError, CrcError, FrameError, LengthError, RequestError

START_TO_METER = const(0x80)
START_FROM_METER = const(0x40)
STOP = const(0x0D)
ACK = const(0x06)
ESCAPE = const(0x1B)
DEFAULT_ADDRESS = const(0x3F)

CID_GET_TYPE = const(0x01)
CID_GET_SERIAL = const(0x02)
CID_GET_REGISTER = const(0x10)
CID_SET_CLOCK = const(0x09)  # answered by a lone ACK, as PutRegister
CID_PUT_REGISTER = const(0x11)
MAX_REGISTERS_PER_REQUEST = const(8)

# Largest unstuffed dst..CRC we accept: 8 registers with up to 8-byte values (real meters use
# 1, 2 or 4) is 2 + 8 * 13 + 2 = 108 bytes. Anything longer is garbage, not a frame.
MAX_BODY = const(128)

# CRC-16/XMODEM (poly 0x1021, init 0), four bits at a time: a 16-entry table is a good trade
# between a 512-byte table and a slow bit loop on the ESP32.
_CRC_NIBBLE = (
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
    0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF,
)  # fmt: skip


def crc16(data, crc=0):
    """CRC-16/XMODEM of data, continuing from crc. Over dst..CRC of a good frame it is 0."""
    table = _CRC_NIBBLE
    for b in data:
        crc = ((crc << 4) & 0xFFFF) ^ table[(crc >> 12) ^ (b >> 4)]
        crc = ((crc << 4) & 0xFFFF) ^ table[(crc >> 12) ^ (b & 0x0F)]
    return crc


def is_reserved(b):
    """True for the five bytes that must be escaped inside a frame: 06 0D 1B 40 80."""
    return b == 0x06 or b == 0x0D or b == 0x1B or b == 0x40 or b == 0x80


def stuff(data):
    """Byte-stuff data (no framing): each reserved byte b becomes 1B, b ^ FF."""
    out = bytearray()
    for b in data:
        if is_reserved(b):
            out.append(ESCAPE)
            out.append(b ^ 0xFF)
        else:
            out.append(b)
    return bytes(out)


def encode_frame(address, cid, data=b"", start=START_TO_METER):
    """Whole wire frame for dst, CID and data: CRC appended, stuffed, wrapped in start..stop."""
    if not isinstance(address, int) or not 0 <= address <= 0xFF:
        raise RequestError("address: expected 0..255, got %r" % (address,))
    if not isinstance(cid, int) or not 0 <= cid <= 0xFF:
        raise RequestError("CID: expected 0..255, got %r" % (cid,))
    body = bytearray((address, cid))
    body.extend(data)
    crc = crc16(body)
    body.append(crc >> 8)
    body.append(crc & 0xFF)
    out = bytearray((start,))
    out.extend(stuff(body))
    out.append(STOP)
    return bytes(out)


def request_get_type(address=DEFAULT_ADDRESS):
    return encode_frame(address, CID_GET_TYPE)


def request_get_serial(address=DEFAULT_ADDRESS):
    return encode_frame(address, CID_GET_SERIAL)


def request_get_registers(rids, address=DEFAULT_ADDRESS):
    """GetRegister request for 1..8 register ids."""
    n = len(rids)
    if not 1 <= n <= MAX_REGISTERS_PER_REQUEST:
        raise RequestError("GetRegister takes 1 to 8 register ids, got %d" % n)
    data = bytearray((n,))
    for rid in rids:
        if not isinstance(rid, int) or not 0 <= rid <= 0xFFFF:
            raise RequestError("register id: expected 0..0xFFFF, got %r" % (rid,))
        data.append(rid >> 8)
        data.append(rid & 0xFF)
    return encode_frame(address, CID_GET_REGISTER, data)


_IDLE = const(0)
_BODY = const(1)
_ESCAPED = const(2)


class FrameAssembler:
    """Receive-side frame assembler, fed bytes as they arrive (a chunk or one byte at a time).

    Everything before a start byte is discarded: the echo of our own request from IR heads
    (it starts with 0x80 and cannot contain a raw 0x40) and stray 0x00 from the meter. A raw
    start byte inside a frame restarts it, as only a new frame can carry one. A lone 0x06 outside
    a frame is the ACK when one is expected (see expect()), else noise like a stray 0x00. The
    buffer is preallocated; feeding allocates nothing.

    After feed() returns with done set, read address, cid, ack and payload(); the payload view is
    valid until the next reset(). Errors raise a KmpError subclass and leave the assembler idle.
    """

    def __init__(self, start=START_FROM_METER, max_body=MAX_BODY):
        self._start = start
        self._buf = bytearray(max_body)
        self._view = memoryview(self._buf)
        self._max = max_body
        self.expect_address = None
        self.expect_cid = None
        self.expect_ack = True
        self.reset()

    def expect(self, address=None, cid=None, ack=None):
        """Reset and set what the next frame must carry (None accepts anything). ack: whether a
        lone 0x06 answers; by default only for SetClock and PutRegister, the commands the meter
        ACKs (PROTOCOL.md 3.1), and for cid None. Otherwise a 0x06 outside a frame is ignored:
        a stray one must not end the exchange before the data answer that follows."""
        self.expect_address = address
        self.expect_cid = cid
        if ack is None:
            ack = cid is None or cid == CID_SET_CLOCK or cid == CID_PUT_REGISTER
        self.expect_ack = ack
        self.reset()

    def reset(self):
        self._state = _IDLE
        self._n = 0
        self._crc = 0
        self.done = False
        self.ack = False
        self.in_frame = False
        self.address = None
        self.cid = None

    def feed(self, data):
        """Feed received bytes; returns how many were used. Bytes after a complete frame are
        left unused (they belong to whatever comes next)."""
        if self.done:
            return 0
        start = self._start
        state = self._state
        i = 0
        n = len(data)
        while i < n:
            b = data[i]
            i += 1
            if state == _IDLE:
                if b == start:
                    state = _BODY
                    self._n = 0
                    self._crc = 0
                    self.in_frame = True
                elif b == ACK and self.expect_ack:
                    self.ack = True
                    self.done = True
                    break
                continue
            if b == start:
                # A new frame begins: what we had was an unterminated fragment.
                state = _BODY
                self._n = 0
                self._crc = 0
                continue
            if b == STOP:
                if state == _ESCAPED:
                    self.reset()
                    raise FrameError(
                        "escape byte 0x1B directly before the stop byte: truncated frame"
                    )
                self._state = _IDLE
                self._finish()
                break
            if state == _ESCAPED:
                if not is_reserved(b ^ 0xFF):
                    self.reset()
                    raise FrameError(
                        "invalid escape 1B %02X: expected the complement of 06/0D/1B/40/80, "
                        "got 0x%02X" % (b, b ^ 0xFF)
                    )
                b ^= 0xFF
                state = _BODY
            elif b == ESCAPE:
                state = _ESCAPED
                continue
            elif is_reserved(b):
                self.reset()
                raise FrameError("unescaped reserved byte 0x%02X inside a frame" % b)
            if self._n >= self._max:
                self.reset()
                raise LengthError("frame longer than %d bytes: not a KMP response" % self._max)
            self._buf[self._n] = b
            self._n += 1
            # The CRC follows the bytes as they come, so the check at the stop byte is free.
            crc = self._crc
            crc = ((crc << 4) & 0xFFFF) ^ _CRC_NIBBLE[(crc >> 12) ^ (b >> 4)]
            self._crc = ((crc << 4) & 0xFFFF) ^ _CRC_NIBBLE[(crc >> 12) ^ (b & 0x0F)]
        if not self.done:
            self._state = state
        return i

    def _finish(self):
        n = self._n
        if n < 4:
            self.reset()
            raise FrameError(
                "truncated frame: %d byte(s) between start and stop, need at least 4 "
                "(address, CID, CRC)" % n
            )
        if self._crc != 0:
            got = (self._buf[n - 2] << 8) | self._buf[n - 1]
            want = crc16(self._view[: n - 2])
            self.reset()
            raise CrcError("CRC mismatch: frame says 0x%04X, computed 0x%04X" % (got, want))
        address = self._buf[0]
        cid = self._buf[1]
        if self.expect_address is not None and address != self.expect_address:
            self.reset()
            raise AddressError(
                "response from address 0x%02X, expected 0x%02X" % (address, self.expect_address)
            )
        if self.expect_cid is not None and cid != self.expect_cid:
            self.reset()
            raise CidError("response with CID 0x%02X, expected 0x%02X" % (cid, self.expect_cid))
        self.address = address
        self.cid = cid
        self.done = True
        self.in_frame = False

    def payload(self):
        """The data bytes of the completed frame (after CID, before CRC), as a memoryview."""
        return self._view[2 : self._n - 2]
