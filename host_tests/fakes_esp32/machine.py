# A fake `machine` for running firmware/board.py under MicroPython WASM: the UART is the virtual
# MULTICAL behind a fake line, RTC memory is kept in this module, deepsleep ends the "wake".
# Tests set the module globals (LINE, RESET_CAUSE, TIMER_ARMS_BEFORE_STOP) before board.main().

import time

from fake_uart import FakeUart

DEEPSLEEP_RESET = 4
PWRON_RESET = 1
WDT_RESET = 3

LINE = None  # responder(request) -> [(delay_ms, bytes)], e.g. virtual_meter.FaultyLine
RESET_CAUSE = PWRON_RESET
RTC_MEMORY = b""
UARTS = []  # (id, kwargs) of every UART made
WDTS = []
TIMER_ARMS_BEFORE_STOP = 2
TIMER_PERIODS = []  # period of every Timer.init, in order
_arms = [0]


class DeepSleep(BaseException):
    """machine.deepsleep never returns: the wake ends here (not an Exception, like the reset)."""

    def __init__(self, ms):
        super().__init__(ms)
        self.ms = ms


class Stop(BaseException):
    """Ends a mains-loop test after some timer arms."""


UNIQUE_ID = b"\x24\x6f\x28\x0a\x1b\x2c"  # an ESP32's base MAC (Espressif OUI 24:6F:28)


def unique_id():
    return UNIQUE_ID


def reset_cause():
    return RESET_CAUSE


def deepsleep(ms=0):
    raise DeepSleep(ms)


def reset():
    raise Stop("machine.reset()")


class UART:
    def __init__(self, uart_id, baudrate=9600, **kw):
        kw["baudrate"] = baudrate
        UARTS.append((uart_id, kw))
        self._u = FakeUart(time, LINE, byte_ms=11000 / baudrate)

    def write(self, buf):
        return self._u.write(buf)

    def any(self):
        return self._u.any()

    def readinto(self, buf, n=None):
        return self._u.readinto(buf, n)


class RTC:
    def memory(self, data=None):
        global RTC_MEMORY
        if data is None:
            return RTC_MEMORY
        RTC_MEMORY = bytes(data)


class WDT:
    def __init__(self, timeout=5000, id=0):
        WDTS.append(timeout)
        self.fed = 0

    def feed(self):
        self.fed += 1


class Pin:
    IN = 1
    OUT = 2
    PULL_UP = 1
    LEVELS = {}  # pin -> value; unset pins read 1 (pulled up, button not pressed)

    def __init__(self, n, mode=None, pull=None):
        self.n = n

    def value(self):
        return Pin.LEVELS.get(self.n, 1)


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, n):
        self.cb = None

    def init(self, mode=0, period=0, callback=None):
        TIMER_PERIODS.append(period)
        _arms[0] += 1
        if _arms[0] >= TIMER_ARMS_BEFORE_STOP:
            raise Stop("timer armed %d times" % _arms[0])
        callback(self)  # fire at once: the test does not wait for the interval

    def deinit(self):
        pass
