# config.json: schema, defaults and validation. Runs once at boot on the ESP32 (MicroPython 1.29)
# and on CPython 3.11+ for the host runtime. Every problem is collected with its path and raised
# as one ConfigError, so the node never starts half-configured. docs/configuration.md is the
# user-facing reference for every key below.
#
# MicroPython notes: no `re` (hand-checked charsets), dicts are unordered (order comes from the
# tables and registers.SENSOR_KEYS), str.lower() is ASCII-only, bool may or may not be an int
# subclass (always test bool first).

import json

from budget import requests_per_read
from durations import INTERVAL_MAX, INTERVAL_MIN, MIN_SLEEP_INTERVAL, duration_ms
from kmp import registers

TARGETS = ("esp32", "host")

# The raw defaults, as they would be written in config.json. validate() fills these in.
DEFAULTS = {
    "node_id": "",
    "wifi": {"ssid": "", "password": ""},
    "mqtt": {
        "host": "",
        "port": 1883,  # 8883 when tls is true and no port is given
        "user": "",
        "password": "",
        "tls": False,
        "ca_file": "",  # CA certificate file: "" encrypts without checking the broker's certificate
        "base_topic": "kmp2mqtt",
        "discovery": True,
        "discovery_prefix": "homeassistant",
        "ha_version": None,  # "YYYY.M" of an older Home Assistant; null: a current one
    },
    "meter": {
        "uart": 1,
        "rx_pin": 13,
        "tx_pin": 15,
        "address": 63,
        "timeout_ms": 1600,
        "retries": 2,
        "port": "",
        "model": "",  # what Home Assistant shows as the model; "" names it from GetType
        "read_budget": 24,  # exchanges a day (Kamstrup: max. one reading an hour); 0: none
    },
    "update_interval": 60,
    "align": False,
    "sensors": {
        "heat_energy": {"name": "Heat Energy"},
        "power": {"name": "Heat Power"},
        "temp_diff": {"name": "Heat Temperature Difference"},
        "flow": {"name": "Heat Flow"},
    },
    "custom": [],
    "battery": {
        "deep_sleep": False,
        "wake_deadline_s": 30,
        "max_backoff_s": 3600,
        "stay_awake_pin": None,
        "ip": "",
        "netmask": "",
        "gateway": "",
        "dns": "",
    },
    "buffer": {"capacity": 672, "path": "buffer"},
}

# Names for sensors listed without one (Home Assistant shows them).
SENSOR_NAMES = {
    "heat_energy": "Heat Energy",
    "power": "Heat Power",
    "temp1": "Heat Flow Temperature",
    "temp2": "Heat Return Temperature",
    "temp_diff": "Heat Temperature Difference",
    "flow": "Heat Flow",
    "volume": "Heat Volume",
}

# Ids a sensor must not have. Keys of the state and history JSON besides the sensor ids
# (lib/payloads.py), and the node's diagnostic entities, whose unique_id and discovery topic a
# sensor of that id would take over (lib/discovery.py DIAGNOSTICS). Listed here, not imported:
# the validator stays one module and the config cache's key covers it; a test keeps both in step.
PAYLOAD_KEYS = ("time", "seq", "clock", "uptime_s")
DIAGNOSTIC_IDS = ("rssi", "uptime", "free_heap", "link_errors", "last_error", "meter_problem",
                  "meter_exchanges")  # fmt: skip
RESERVED_IDS = PAYLOAD_KEYS + DIAGNOSTIC_IDS

TLS_PORT = 8883
ID_MAX = 64

_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ID_CHARS = _LOWER + _DIGITS + "_"
_NODE_CHARS = _ID_CHARS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ-"
_MISSING = object()  # default of a required field
_DURATION_HINT = 'expected seconds (a number) or a duration like "60s", "15min", "1h", "2h30min"'
# ESP32 (not S2/S3/C3): GPIO6..11 drive the SPI flash, 34..39 are input-only, these do not exist.
_FLASH_PINS = (6, 7, 8, 9, 10, 11)
_NO_PINS = (24, 28, 29, 30, 31)
# Slugs: MicroPython's lower() is ASCII-only, so common accented letters are mapped by hand.
_TRANSLIT = {
    "ä": "a", "Ä": "a", "ö": "o", "Ö": "o", "ü": "u", "Ü": "u", "ß": "ss",
    "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "å": "a", "Å": "a",
    "é": "e", "É": "e", "è": "e", "ê": "e", "á": "a", "à": "a", "ó": "o", "ñ": "n", "ç": "c",
}  # fmt: skip


class ConfigError(Exception):
    """All problems of one config: .errors is a list of (path, message); str() has one a line."""

    def __init__(self, errors):
        super().__init__("\n".join(_line(p, m) for p, m in errors))
        self.errors = errors


def _line(path, msg):
    return "%s: %s" % (path, msg) if path else msg


class _Ctx:
    def __init__(self, target):
        self.target = target
        self.errors = []
        self.made_ids = []  # indexes of custom entries whose id was made from the name

    def err(self, path, msg):
        self.errors.append((path, msg))


# -- describing values in messages (never the value of a secret) ---------------------------------


def _kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def _got(v):
    """The value as the user wrote it in JSON, shortened; containers by kind only."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        s = v if len(v) <= 40 else v[:37] + "..."
        out = []
        for ch in s:
            if ch == '"' or ch == "\\":
                out.append("\\" + ch)
            elif not _printable(ch):
                out.append("?")
            else:
                out.append(ch)
        return '"%s"' % "".join(out)
    if isinstance(v, int):
        # CPython refuses str() of huge ints; nobody needs all the digits anyway
        return str(v) if -(10**15) < v < 10**15 else "a huge number"
    if isinstance(v, float):
        return repr(v)
    return _kind(v)


def _join(path, key):
    # keys come from the user's file: odd ones (empty, control characters, long) are quoted
    if not isinstance(key, str) or not 0 < len(key) <= 40 or not _printable(key):
        key = _got(key)
    return "%s.%s" % (path, key) if path else key


def _printable(s):
    # no control characters, no lone surrogates (CPython's json gives "\ud800" as one)
    for ch in s:
        if ch < " " or ch == "\x7f" or 0xD800 <= ord(ch) <= 0xDFFF:
            return False
    return True


# -- generic checkers: check(value, path, ctx) -> normalized value, or None after ctx.err() ------


def _fields(v, path, table, c, defaults):
    """An object with the keys of table ((key, check), ...); missing keys take defaults[key]."""
    if not isinstance(v, dict):
        c.err(path, "expected an object {...}, got %s" % _kind(v))
        return None
    known = [t[0] for t in table]
    unknown = [k for k in v if k not in known]
    for k in sorted(unknown, key=str):
        c.err(_join(path, k), "unknown key; expected one of %s" % ", ".join(known))
    out = {}
    for key, check in table:
        out[key] = check(v[key] if key in v else defaults[key], _join(path, key), c)
    return out


def _int_range(lo, hi):
    def check(v, path, c):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            c.err(path, "expected an integer %d..%d, got %s" % (lo, hi, _got(v)))
            return None
        return v

    return check


def _bool(v, path, c):
    if not isinstance(v, bool):
        c.err(path, "expected true or false, got %s" % _got(v))
        return None
    return v


def _string(v, path, c):
    if not isinstance(v, str):
        c.err(path, "expected a string, got %s" % _got(v))
        return None
    if _nbytes(v) < 0:
        c.err(path, "expected text, got a lone UTF-16 surrogate escape such as \\ud800")
        return None
    return v


def _nbytes(s):
    """UTF-8 length; -1 for text that has none (CPython: lone surrogates)."""
    try:
        return len(s.encode())
    except UnicodeError:
        return -1


def _secret(v, path, c):
    # passwords: type and length only, never the value
    if not isinstance(v, str):
        c.err(path, "expected a string, got %s" % _kind(v))
        return None
    n = _nbytes(v)
    if n < 0:
        c.err(path, "expected text, got a lone UTF-16 surrogate escape")
        return None
    if n > 64:
        c.err(path, "expected at most 64 bytes, got %d" % n)
        return None
    return v


# -- node_id, wifi -----------------------------------------------------------------------------


def _node_id(v, path, c):
    if _string(v, path, c) is None:
        return None
    if len(v) > ID_MAX or not _only(v, _NODE_CHARS):
        c.err(path, "expected up to %d letters, digits, _ or -, got %s" % (ID_MAX, _got(v)))
        return None
    return v


def _only(s, chars):
    for ch in s:
        if ch not in chars:
            return False
    return True


def _ssid(v, path, c):
    if _string(v, path, c) is None:
        return None
    if v == "" and c.target == "esp32":
        c.err(path, "required on the ESP32: the name of your Wi-Fi network")
        return None
    if _nbytes(v) > 32:
        c.err(path, "expected at most 32 bytes (a Wi-Fi limit), got %d" % _nbytes(v))
        return None
    return v


_WIFI = (("ssid", _ssid), ("password", _secret))


def _wifi(v, path, c):
    return _fields(v, path, _WIFI, c, DEFAULTS["wifi"])


# -- mqtt ----------------------------------------------------------------------------------------


def _host(v, path, c):
    if _string(v, path, c) is None:
        return None
    if v == "":
        c.err(path, "required: the MQTT broker's host name or IP address")
    elif "://" in v:
        c.err(path, "expected a host name or IP address without a scheme (TLS: set mqtt.tls), "
                    "got %s" % _got(v))  # fmt: skip
    elif v.count(":") == 1:
        c.err(path, "expected a host name or IP address; put the port in mqtt.port, got %s"
              % _got(v))  # fmt: skip
    elif not _only(v, _NODE_CHARS + ".:[]%") or len(v) > 253:
        c.err(path, "expected a host name or IP address, got %s" % _got(v))
    else:
        return v
    return None


def _topic(v, path, c):
    if _string(v, path, c) is None:
        return None
    if v == "":
        c.err(path, "required: a topic prefix such as kmp2mqtt")
    elif "#" in v or "+" in v:
        c.err(path, "must not contain the MQTT wildcards # or +, got %s" % _got(v))
    elif not _printable(v):
        c.err(path, "must not contain control characters, got %s" % _got(v))
    elif v[0] == "/" or v[-1] == "/" or "//" in v:
        c.err(path, "must not start or end with / or contain empty levels, got %s" % _got(v))
    else:
        return v
    return None


_HA_VERSION_HINT = 'expected the Home Assistant version as "YYYY.M" (e.g. "2025.4"), or null'


def _ha_version(v, path, c):
    """null, or "YYYY.M" / "YYYY.M.P" -> YYYYMM (202504), what lib/ha.py compares."""
    if v is None:
        return None
    parts = v.split(".") if isinstance(v, str) else ()
    ok = len(parts) in (2, 3)
    for p in parts:
        ok = ok and 0 < len(p) <= 4 and _only(p, _DIGITS)
    if ok and 2020 <= int(parts[0]) <= 2099 and 1 <= int(parts[1]) <= 12:
        return int(parts[0]) * 100 + int(parts[1])
    hint = ""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        hint = "; write it as a string, in quotes (2025.10 as a number is 2025.1)"
    c.err(path, "%s for a current one, got %s%s" % (_HA_VERSION_HINT, _got(v), hint))
    return None


_MQTT = (
    ("host", _host),
    ("port", _int_range(1, 65535)),
    ("user", _string),
    ("password", _secret),
    ("tls", _bool),
    ("ca_file", _string),
    ("base_topic", _topic),
    ("discovery", _bool),
    ("discovery_prefix", _topic),
    ("ha_version", _ha_version),
)


def _mqtt(v, path, c):
    out = _fields(v, path, _MQTT, c, DEFAULTS["mqtt"])
    if out is None:
        return None
    if "port" not in v and out["tls"]:
        out["port"] = TLS_PORT
    if out["password"] and out["user"] == "":
        # MQTT 3.1.1 sends a password only together with a user name
        c.err(_join(path, "password"), "set mqtt.user too: MQTT sends a password only with a user")
    if out["ca_file"] and out["tls"] is False:
        c.err(_join(path, "ca_file"), "set mqtt.tls to true to use ca_file")
    return out


# -- meter ---------------------------------------------------------------------------------------


def _uart(v, path, c):
    if isinstance(v, int) and not isinstance(v, bool):
        if v in (1, 2):
            return v
        if v == 0:
            c.err(path, "UART0 is the REPL console; use 1 or 2")
            return None
    c.err(path, "expected 1 or 2 (ESP32 UART1/UART2), got %s" % _got(v))
    return None


def _gpio(v, path, c, output):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 39:
        c.err(path, "expected an ESP32 GPIO number 0..39, got %s" % _got(v))
    elif v in _FLASH_PINS:
        c.err(path, "GPIO%d is wired to the SPI flash (GPIO6..11); use another pin" % v)
    elif v in _NO_PINS:
        c.err(path, "GPIO%d does not exist on the ESP32" % v)
    elif output and v >= 34:
        c.err(path, "GPIO%d is input-only (GPIO34..39); TX drives the IR LED" % v)
    else:
        return v
    return None


def _rx_pin(v, path, c):
    return _gpio(v, path, c, False)


def _tx_pin(v, path, c):
    return _gpio(v, path, c, True)


def _serial_port(v, path, c):
    if _string(v, path, c) is None:
        return None
    if v == "" and c.target == "host":
        c.err(path, "required on a host: the IR head's serial device, e.g. /dev/ttyUSB0")
        return None
    return v


_MODEL_CHARS = 64


def _model(v, path, c):
    if _string(v, path, c) is None:
        return None
    if len(v) > _MODEL_CHARS:
        c.err(path, "at most %d characters, got %d" % (_MODEL_CHARS, len(v)))
        return None
    return v.strip()


_METER = (
    ("uart", _uart),
    ("rx_pin", _rx_pin),
    ("tx_pin", _tx_pin),
    ("address", _int_range(0, 255)),
    ("timeout_ms", _int_range(100, 10000)),
    ("retries", _int_range(0, 5)),
    ("port", _serial_port),
    ("model", _model),
    ("read_budget", _int_range(0, 86400)),
)


def _meter(v, path, c):
    out = _fields(v, path, _METER, c, DEFAULTS["meter"])
    if out is not None and out["rx_pin"] is not None and out["rx_pin"] == out["tx_pin"]:
        c.err(_join(path, "tx_pin"), "must differ from meter.rx_pin (both GPIO%d)" % out["tx_pin"])
    return out


# -- update_interval -----------------------------------------------------------------------------


def _interval(v, path, c):
    """Seconds as a number or a duration string -> int seconds."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        c.err(path, "%s, got %s" % (_DURATION_HINT, _got(v)))
        return None
    if isinstance(v, str):
        ms = duration_ms(v)
        if ms is None:
            c.err(path, "%s, got %s" % (_DURATION_HINT, _got(v)))
            return None
        seconds = ms / 1000 if ms % 1000 else ms // 1000
    else:
        seconds = v
    if not INTERVAL_MIN <= seconds <= INTERVAL_MAX:  # also false for NaN
        c.err(path, "expected %d s .. 24 h (%d..%d seconds), got %s"
              % (INTERVAL_MIN, INTERVAL_MIN, INTERVAL_MAX, _got(v)))  # fmt: skip
        return None
    if int(seconds) != seconds:
        c.err(path, "expected whole seconds, got %s" % _got(v))
        return None
    return int(seconds)


# -- sensors and custom registers ----------------------------------------------------------------


def _name(v, path, c):
    if v is _MISSING:
        c.err(path, "required: the sensor's name in Home Assistant")
        return None
    if _string(v, path, c) is None:
        return None
    if v.strip() == "":
        c.err(path, "must not be empty")
        return None
    return v.strip()


_SENSOR = (("name", _name),)


def _sensors(v, path, c):
    if not isinstance(v, dict):
        c.err(path, 'expected an object like {"heat_energy": {}}, got %s' % _kind(v))
        return None
    out = {}
    for key in registers.SENSOR_KEYS:
        if key in v:
            out[key] = _fields(v[key], _join(path, key), _SENSOR, c, {"name": SENSOR_NAMES[key]})
    for key in sorted([k for k in v if k not in registers.SENSOR_KEYS], key=str):
        msg = "unknown sensor; expected one of %s" % ", ".join(registers.SENSOR_KEYS)
        entry = registers.by_key(key) if isinstance(key, str) else None
        if entry is not None:
            msg += "; read %s as a custom register with command 0x%04X" % (key, entry[0])
        c.err(_join(path, key), msg)
    return out


def _command(v, path, c):
    if v is _MISSING:
        c.err(path, "required: the register id as 2-byte hex like 0x003C")
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        if 0 <= v <= 0xFFFF:
            return v
        c.err(path, "expected an integer 0..65535 or 2-byte hex like 0x003C, got %s" % _got(v))
        return None
    if isinstance(v, str) and 3 <= len(v) <= 6 and v[:2] in ("0x", "0X") and _only(v[2:], _HEX):
        return int(v[2:], 16)
    msg = "expected 2-byte hex like 0x003C, got %s" % _got(v)
    entry = registers.by_key(v) if isinstance(v, str) else None
    if entry is not None:
        msg += "; %s is 0x%04X" % (v, entry[0])
    c.err(path, msg)
    return None


def _id(v, path, c):
    if v is None:
        return None  # made from the name
    if _string(v, path, c) is None:
        return None
    if v == "" or len(v) > ID_MAX or not _only(v, _ID_CHARS):
        c.err(path, "expected up to %d lower-case letters, digits or _, got %s" % (ID_MAX, _got(v)))
        return None
    return v


def slug(name):
    """A name as an id: "Custom Heat Energy" -> "custom_heat_energy" ([a-z0-9_], at most 64)."""
    out = []
    for ch in name.lower():
        if ch in _ID_CHARS and ch != "_":
            out.append(ch)
        elif ch in _TRANSLIT:
            out.append(_TRANSLIT[ch])
        elif out and out[-1] != "_":
            out.append("_")
    return "".join(out)[:ID_MAX].strip("_")


_CUSTOM = (("name", _name), ("command", _command), ("id", _id))
_CUSTOM_DEFAULTS = {"name": _MISSING, "command": _MISSING, "id": None}


def _custom(v, path, c):
    if not isinstance(v, list):
        c.err(path, 'expected a list like [{"name": "...", "command": "0x003C"}], got %s'
              % _kind(v))  # fmt: skip
        return None
    out = []
    for i, item in enumerate(v):
        p = "%s[%d]" % (path, i)
        entry = _fields(item, p, _CUSTOM, c, _CUSTOM_DEFAULTS)
        if entry is not None and entry["id"] is None and entry["name"] is not None:
            entry["id"] = slug(entry["name"])
            c.made_ids.append(i)
            if entry["id"] == "":
                c.err(_join(p, "id"), "cannot make an id from the name; set id")
                entry["id"] = None
        out.append(entry)
    return out


# -- battery, buffer -----------------------------------------------------------------------------


def _ipv4(v, path, c):
    if _string(v, path, c) is None:
        return None
    if v == "":
        return v
    parts = v.split(".")
    ok = len(parts) == 4
    for p in parts:
        ok = ok and p.isdigit() and len(p) <= 3 and int(p) <= 255
    if not ok:
        c.err(path, "expected a dotted IPv4 address like 192.168.1.50, got %s" % _got(v))
        return None
    return v


def _stay_awake_pin(v, path, c):
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool) and 34 <= v <= 39:
        # main.py reads it with the internal pull-up, which these pins lack: it would float
        c.err(path, "GPIO%d is input-only without a pull-up (GPIO34..39); the pin is read with "
                    "the internal pull-up: use another pin" % v)  # fmt: skip
        return None
    return _gpio(v, path, c, False)


_BATTERY = (
    ("deep_sleep", _bool),
    ("wake_deadline_s", _int_range(5, 120)),
    ("max_backoff_s", _int_range(60, 86400)),
    ("stay_awake_pin", _stay_awake_pin),
    ("ip", _ipv4),
    ("netmask", _ipv4),
    ("gateway", _ipv4),
    ("dns", _ipv4),
)


def _battery(v, path, c):
    out = _fields(v, path, _BATTERY, c, DEFAULTS["battery"])
    if out is None:
        return None
    if out["deep_sleep"] and c.target == "host":
        c.err(_join(path, "deep_sleep"), "only on the ESP32; a host node stays awake")
    static = [k for k in ("ip", "netmask", "gateway") if out[k]]
    if static and len(static) < 3:
        missing = [k for k in ("ip", "netmask", "gateway") if not out[k]]
        c.err(_join(path, missing[0]), "a static IP needs ip, netmask and gateway together")
    return out


_BUFFER = (
    ("capacity", _int_range(16, 4032)),  # 4032 = six weeks at 15 min, ~1 MB of flash
    ("path", _string),
)


def _buffer(v, path, c):
    out = _fields(v, path, _BUFFER, c, DEFAULTS["buffer"])
    if out is not None and out["path"] is not None and out["path"] == "":
        c.err(_join(path, "path"), "expected a directory name, e.g. buffer")
        out["path"] = None
    return out


# -- the whole file ------------------------------------------------------------------------------

# Top-level sections in order: (key, check). A new section is one entry here, one check
# function and its DEFAULTS entry.
_SECTIONS = (
    ("node_id", _node_id),
    ("wifi", _wifi),
    ("mqtt", _mqtt),
    ("meter", _meter),
    ("update_interval", _interval),
    ("align", _bool),
    ("sensors", _sensors),
    ("custom", _custom),
    ("battery", _battery),
    ("buffer", _buffer),
)


def _finish(cfg, c):
    """Cross-section checks, then cfg["registers"]: [(id, rid, name), ...] in reading order."""
    interval = cfg["update_interval"]
    battery = cfg["battery"]
    if battery and battery["deep_sleep"] and interval is not None and interval < MIN_SLEEP_INTERVAL:
        c.err("update_interval", "deep sleep needs at least %d s between reads, got %d s"
              % (MIN_SLEEP_INTERVAL, interval))  # fmt: skip
    if cfg["align"] and interval is not None and 86400 % interval:
        c.err("align", "needs an update_interval that divides 24 h evenly (e.g. 60, 300, 900, "
                       "3600 s), got %d s" % interval)  # fmt: skip
    sensors = cfg["sensors"] or {}
    custom = cfg["custom"] or []
    seen = {}  # id -> where it is used first
    for key in registers.SENSOR_KEYS:
        if key in sensors:
            seen[key] = "sensors." + key
    for i, entry in enumerate(custom):
        if entry is None or entry["id"] is None:
            continue
        cid = entry["id"]
        where = "custom[%d]" % i
        made = " (made from the name)" if i in c.made_ids else ""
        if cid in PAYLOAD_KEYS:
            c.err(where + ".id", 'id "%s"%s is reserved (the state and history JSON use it); '
                  "set another id" % (cid, made))  # fmt: skip
        elif cid in DIAGNOSTIC_IDS:
            c.err(where + ".id", 'id "%s"%s is reserved (the node\'s diagnostic entity in Home '
                  "Assistant); set another id" % (cid, made))  # fmt: skip
        elif cid in seen:
            c.err(where + ".id", 'duplicate id "%s"%s: already used by %s; set another id'
                  % (cid, made, seen[cid]))  # fmt: skip
        else:
            seen[cid] = where
    listed = [e for e in c.errors if e[0][:7] in ("sensors", "custom[", "custom")]
    if cfg["sensors"] == {} and cfg["custom"] == [] and not listed:  # not just a typo in them
        c.err("sensors", "nothing to read: list at least one sensor or custom register")
    if c.errors:
        return
    regs = []
    for key in registers.SENSOR_KEYS:
        if key in sensors:
            regs.append((key, registers.by_key(key)[0], sensors[key]["name"]))
    for entry in custom:
        regs.append((entry["id"], entry["command"], entry["name"]))
    per_read = requests_per_read(len(regs))
    budget = cfg["meter"]["read_budget"]
    if 0 < budget < per_read:
        c.err("meter.read_budget", "%d exchange(s) a day cannot read the %d registers configured "
              "even once (a read takes %d, 8 registers each); set at least %d, or 0 for no "
              "budget" % (budget, len(regs), per_read, per_read))  # fmt: skip
        return
    cfg["registers"] = regs


def validate(raw, target="esp32"):
    """A parsed config.json -> a new normalized dict with every default filled in, plus
    "registers": [(id, rid, name), ...]. Raises ConfigError listing every problem."""
    if target not in TARGETS:
        raise ValueError("target must be one of %s" % ", ".join(TARGETS))
    c = _Ctx(target)
    cfg = _fields(raw, "", _SECTIONS, c, DEFAULTS)
    if cfg is not None:
        _finish(cfg, c)
    if c.errors:
        raise ConfigError(c.errors)
    return cfg


def load(path, target="esp32"):
    """Read, parse and validate a config file; ConfigError names the file for I/O and JSON
    problems."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError([(path, "cannot read the file: %s" % e)])
    try:
        text = data.decode("utf-8")
    except UnicodeError:
        raise ConfigError([(path, "not UTF-8 text")])
    if text[:1] == "\ufeff":  # byte-order mark some Windows editors write
        text = text[1:]
    try:
        raw = json.loads(text)
    except (ValueError, RuntimeError) as e:  # RuntimeError: CPython's RecursionError
        raise ConfigError([(path, "invalid JSON: %s" % e)])
    return validate(raw, target)
