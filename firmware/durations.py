# Update intervals: their bounds and durations such as "15min". Apart from the validator
# (config.py) because the interval command needs them too, and loading the validator for a
# command would take ~24 KB of RAM for a moment.

INTERVAL_MIN = 5  # seconds: the meter's optical eye and battery need rests between reads
INTERVAL_MAX = 86400  # 24 h
# Deep sleep below a minute costs more than it saves (every wake pays boot + Wi-Fi, see
# bench/RESULTS.md) and reads the meter's optical eye 1440 times a day.
MIN_SLEEP_INTERVAL = 60

_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UNIT_MS = {"ms": 1, "s": 1000, "sec": 1000, "min": 60000, "h": 3600000, "d": 86400000}


def duration_ms(text):
    """A duration such as "60s", "15min", "1.5h", "2h30min", "5000ms" -> int ms; None if not one."""
    s = text.strip().lower()
    if len(s) > 32:
        return None
    n = len(s)
    i = 0
    total = 0
    parts = 0
    while i < n:
        j = i
        while j < n and s[j] in _DIGITS:
            j += 1
        whole = s[i:j]
        frac = ""
        if j < n and s[j] == ".":
            k = j + 1
            while k < n and s[k] in _DIGITS:
                k += 1
            frac = s[j + 1 : k]
            j = k
        if whole == "" and frac == "":
            return None
        while j < n and s[j] == " ":
            j += 1
        u = j
        while u < n and s[u] in _LOWER:
            u += 1
        mult = _UNIT_MS.get(s[j:u])
        if mult is None:
            return None
        scale = 10 ** len(frac)
        total += (int(whole or "0") * scale + int(frac or "0")) * mult // scale
        parts += 1
        while u < n and s[u] == " ":
            u += 1
        i = u
    return total if parts else None
