# Millisecond ticks and sleeps: MicroPython's time.ticks_* on the device, the same API on CPython.
# Code that waits takes a clock object with these four functions, so tests can pass a fake clock.

import time

try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
    sleep_ms = time.sleep_ms
except AttributeError:  # CPython: monotonic milliseconds never wrap, so plain arithmetic holds

    def ticks_ms():
        return time.monotonic_ns() // 1000000

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, delta):
        return a + delta

    def sleep_ms(ms):
        if ms > 0:
            time.sleep(ms / 1000)
