# The main loop. A timer only raises a flag; the work happens here: read and publish when the
# flag is up, poll MQTT for commands and feed the watchdog in between.

from timefmt import seconds_to_next

_IDLE_MS = 50
# Without align, the next read is an interval after this one started (not after it ended: a
# slow cycle must not stretch the interval), but never sooner than this after it ended.
_MIN_GAP_MS = 1000


class Flag:
    """Set from a timer callback, taken by the loop."""

    def __init__(self):
        self.up = False

    def set(self, _timer=None):
        self.up = True

    def take(self):
        up, self.up = self.up, False
        return up


def run(node, ticker, flag, platform, should_stop=None, max_cycles=None, read_first=True):
    """Run the node until should_stop() is true (or max_cycles cycles, for tests).

    ticker.arm(ms, callback) starts a one-shot timer (machine.Timer on the ESP32); it is re-armed
    after every cycle, so align (reads at wall-clock multiples) stays exact across drifts.
    read_first=False: the first read is an interval away (the board did one during startup).
    """
    align = node.cfg["align"]
    if read_first:
        flag.set()
    else:
        ticker.arm(seconds_to_next(node.wall_time(), node.next_interval(), align) * 1000, flag.set)
    cycles = 0
    while should_stop is None or not should_stop():
        platform.feed()
        # A timer tick, or a {"read_now": true} command that arrived while polling MQTT.
        if flag.take() or node.read_requested:
            started = node.clock.ticks_ms()
            node.cycle()
            # A tick that came during this cycle (the old timer, while a read_now cycle ran)
            # is stale: the next read is timed from this one, not taken right after it.
            flag.take()
            platform.keep_clock()  # NTP when due (the ESP32's RTC drifts; a host does nothing)
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                break
            # the configured interval, or what an {"interval": ...} command set, stretched by
            # the meter's read budget outside the setup window (firmware/budget.py)
            interval = node.next_interval()
            if align:
                delay_ms = seconds_to_next(node.wall_time(), interval, True) * 1000
            else:
                spent = node.clock.ticks_diff(node.clock.ticks_ms(), started)
                delay_ms = max(_MIN_GAP_MS, interval * 1000 - spent)
            ticker.arm(delay_ms, flag.set)
        node.mqtt.poll()
        node.clock.sleep_ms(_IDLE_MS)
