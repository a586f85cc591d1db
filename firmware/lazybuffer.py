# The flash buffer, opened only when it is needed: when a reading has to wait, or when readings
# from before a reboot are still on flash. While the broker is reachable (most of the time) the
# buffer's code and bitmaps stay out of RAM; once a backlog is delivered they are dropped again.

import os


class LazyBuffer:
    """ReadingBuffer's API (append, pending, peek, ack, dropped) over buffer.ReadingBuffer."""

    def __init__(self, path, capacity):
        self.path = path
        self.capacity = capacity
        self._buf = None
        self._dropped = 0  # as last seen open
        self._corrupt = 0  # invalid slots met in earlier opens (ReadingBuffer counts per open)
        self._empty = False  # known to hold nothing undelivered (checked once, then tracked)

    def _on_flash(self):
        # Segment files are named s<8 hex digits> and deleted once delivered (buffer.py).
        try:
            return any(name[:1] == "s" for name in os.listdir(self.path))
        except OSError:
            return False

    def _open(self):
        if self._buf is None:
            from buffer import ReadingBuffer

            self._buf = ReadingBuffer(self.path, self.capacity)
        return self._buf

    def _close_if_empty(self):
        if self._buf is not None and not self._buf.pending():
            self._dropped = self._buf.dropped
            self._corrupt += self._buf.corrupt
            self._buf = None
            self._empty = True
            from node import forget_modules

            forget_modules("buffer")

    def append(self, reading):
        self._empty = False
        self._open().append(reading)

    def pending(self):
        if self._buf is None and (self._empty or not self._on_flash()):
            self._empty = True
            return 0
        n = self._open().pending()
        self._close_if_empty()
        return n

    def peek(self, n=1):
        return self._open().peek(n) if self.pending() else []

    def ack(self, seq):
        self._open().ack(seq)
        self._close_if_empty()

    @property
    def dropped(self):
        return self._dropped if self._buf is None else self._buf.dropped

    @property
    def corrupt(self):
        """Readings lost to an invalid slot on flash (torn or corrupted), since start."""
        return self._corrupt + (0 if self._buf is None else self._buf.corrupt)
