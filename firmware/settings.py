# The validated config, cached on flash. Validating config.json takes the validator
# (firmware/config.py, the largest module) into RAM, and the names it interns stay there for
# good; a battery node would also pay for it at every wake. So the result is kept in a cache
# file, valid while config.json and the validator are byte for byte the ones it was made from;
# otherwise (first boot, an edit, a new firmware) config.json is validated again.

import json
import sys
from binascii import crc32

_CHUNK = 256
# The validator and the modules whose tables decide what it returns.
_VALIDATOR = ("config", "budget", "durations", "kmp/registers")


def _crc_of(path, crc=0):
    """CRC-32 of a file, read in small chunks (no copy of the file in RAM)."""
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                return crc
            crc = crc32(view[:n], crc)


def module_file(name):
    """Where `import name` loads from ("kmp/registers" for kmp.registers; .py before .mpy in
    each sys.path entry, as import does), or None."""
    for d in sys.path:
        for ext in (".py", ".mpy"):
            path = (d + "/" if d else "") + name + ext
            try:
                open(path, "rb").close()
                return path
            except OSError:
                pass
    return None


def validator_files():
    return [module_file(name) for name in _VALIDATOR]


def cache_key(path, target):
    """What the cache must have been made from: config.json, the validator and the target."""
    crc = 0
    for f in validator_files():
        if f is not None:
            crc = _crc_of(f, crc)
    return "%08x %08x %s" % (_crc_of(path), crc, target)


def load(path="config.json", cache="config.cache", target="esp32"):
    """The validated config (config.validate's result). Raises config.ConfigError for a bad
    config.json, as config.load does; the cache is only written for a good one."""
    try:
        key = cache_key(path, target)
    except OSError:
        key = None  # config.json unreadable: the validator says so, with the path
    if key is not None:
        try:
            with open(cache) as f:
                cached = json.load(f)
            if cached["key"] == key:
                cfg = cached["config"]
                cfg["registers"] = [tuple(r) for r in cfg["registers"]]  # JSON made them lists
                return cfg
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no cache yet, or a damaged one: validate
    import config

    cfg = config.load(path, target)
    if key is not None:
        write(cache, key, cfg)
    return cfg


def write(cache, key, cfg):
    """The cache, written atomically (jsonfile); if the flash refuses, the next boot validates
    again."""
    import jsonfile

    jsonfile.write(cache, {"key": key, "config": cfg})
