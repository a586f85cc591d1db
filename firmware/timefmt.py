# Wall-clock helpers: ISO 8601 UTC text and interval alignment, from integer seconds.

import time

# Before NTP has set the clock, an ESP32 starts at its epoch: anything before 2024 is "unknown".
_MIN_VALID_YEAR = 2024


def clock_known(now=None):
    return time.gmtime(time.time() if now is None else now)[0] >= _MIN_VALID_YEAR


def iso_utc(seconds):
    """'2026-11-23T12:00:00Z' for a time.time() value."""
    t = time.gmtime(int(seconds))
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (t[0], t[1], t[2], t[3], t[4], t[5])


def seconds_to_next(now, interval, align):
    """Seconds until the next read: a whole interval, or with align until the next wall-clock
    multiple of the interval (hourly reads land on the hour, so HA's hourly statistics are right)."""
    if not align:
        return interval
    left = interval - int(now) % interval
    return left if left > 0 else interval
