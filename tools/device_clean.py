# Run on the board by `make flash` and `make flash-romfs` (mpremote run) before copying: removes
# what an earlier flash left of the app, so a stale module can never win over the new build (a
# .py wins over a .mpy of the same name in one directory, and /lib is searched before
# /firmware). Libraries that are not ours (e.g. installed with mip into /lib), config.json and
# the reading buffer are kept.
import os

# Our top-level names in /lib (host_tests/test_deploy.py keeps this equal to lib/).
APP_LIB = ("discovery", "exactjson", "ha", "kmp", "payloads", "ticks")


def remove(path):
    try:
        mode = os.stat(path)[0]
    except OSError:
        return  # not there
    if mode & 0x4000:  # a directory
        for name in os.listdir(path):
            remove(path + "/" + name)
        os.rmdir(path)
    else:
        os.remove(path)


remove("/firmware")
for name in APP_LIB:
    for suffix in ("", ".py", ".mpy"):
        remove("/lib/" + name + suffix)
