# A fake ntptime: the WASM port's clock is already the host's. FAIL: the NTP server does not
# answer (the real one raises OSError when its 1 s socket timeout passes).
CALLS = []
FAIL = False


def settime():
    CALLS.append(1)
    if FAIL:
        raise OSError(110)  # ETIMEDOUT
