# A fake millisecond clock with the ticks API (ticks_ms, ticks_diff, ticks_add, sleep_ms):
# sleeping advances simulated time at once, so tests of deadlines run in no real time.


class FakeClock:
    def __init__(self, start=1000):
        self.now = start
        self.slept = 0

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, a, delta):
        return a + delta

    def sleep_ms(self, ms):
        if ms > 0:
            self.now += ms
            self.slept += ms

    def advance(self, ms):
        self.now += ms
