# A fake UART for the meter link: whatever the link writes goes to a responder, and the bytes
# the responder returns arrive on the fake clock's schedule, paced like a 1200 baud 8N2 line.
#
# responder(request_bytes) -> list of (delay_ms, bytes): the same contract as
# virtual_meter.FaultyLine.on_request, so tests can put the virtual meter behind this UART.


class FakeUart:
    def __init__(self, clock, responder=None, byte_ms=None):
        self.clock = clock
        self.responder = responder
        self.byte_ms = byte_ms  # None: bytes arrive all at once; 9.17 for real 1200 8N2
        self._pending = []  # (due_ms, sequence, byte); the sequence keeps order (MicroPython's
        self._seq = 0  # sort is not stable)
        self._line_free = 0  # one line: a new burst starts after the previous one has ended
        self.written = bytearray()
        self.writes = 0

    def inject(self, data, delay_ms=0):
        """Schedule bytes to arrive delay_ms from now (noise, leftovers)."""
        self._schedule(self.clock.ticks_ms() + delay_ms, data)

    def _schedule(self, due, data):
        if self.byte_ms and due < self._line_free:
            due = self._line_free
        for i, b in enumerate(data):
            at = due + (int(i * self.byte_ms) if self.byte_ms else 0)
            self._pending.append((at, self._seq, b))
            self._seq += 1
        if self.byte_ms:
            self._line_free = due + int(len(data) * self.byte_ms) + 1

    def write(self, buf):
        data = bytes(buf)
        self.written.extend(data)
        self.writes += 1
        if self.responder is not None:
            now = self.clock.ticks_ms()
            for delay_ms, chunk in self.responder(data):
                self._schedule(now + delay_ms, chunk)
        return len(data)

    def _ready(self):
        now = self.clock.ticks_ms()
        n = 0
        for due, _, _ in self._pending:
            if due <= now:
                n += 1
        return n

    def any(self):
        return self._ready()

    def readinto(self, buf, nbytes=None):
        want = len(buf) if nbytes is None else nbytes
        now = self.clock.ticks_ms()
        self._pending.sort()
        n = 0
        while n < want and self._pending and self._pending[0][0] <= now:
            buf[n] = self._pending.pop(0)[2]
            n += 1
        return n or None

    def read(self, nbytes=None):
        buf = bytearray(nbytes if nbytes is not None else max(1, self._ready()))
        n = self.readinto(buf)
        return bytes(buf[:n]) if n else None
