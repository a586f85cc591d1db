# MQTT topics and payloads: what the node publishes, as (topic, payload text) pairs. Pure
# functions over plain inputs, portable (MicroPython 1.29 + CPython); docs/mqtt.md is the
# contract. Meter values arrive as exact decimal text and go into JSON verbatim (exactjson):
# an ESP32 float would turn 1234.567 into 1234.5670166.
#
# Sensor descriptors are tuples (id, name, rid, kind, unit_code, exponent): id is the key in
# the state JSON ('heat_energy'), kind is kmp.registers TOTAL/MEASURE/INFO, unit_code and
# exponent are what the meter reported (None until the register has been read once).
#
# Discovery and the units topic, sent once per boot or units change, live in discovery.py so
# that their code and tables are loaded only then (RAM on the ESP32).

import json

from exactjson import Number, dumps

STATUS = "status"
STATE = "state"
UNITS = "units"
DIAG = "diag"
HISTORY = "history"
CMD = "cmd"

ONLINE = "online"
OFFLINE = "offline"


def topic(base_topic, node_id, leaf):
    """'<base>/<node_id>/<leaf>', leaf one of STATUS, STATE, UNITS, DIAG, HISTORY, CMD."""
    return "%s/%s/%s" % (base_topic, node_id, leaf)


# -- status, state, history, diag, units -------------------------------------------------------


def status_message(base_topic, node_id, online=True):
    """Retained availability: 'online' after connecting; 'offline' is the last will."""
    return topic(base_topic, node_id, STATUS), ONLINE if online else OFFLINE


def last_will(base_topic, node_id):
    """(topic, 'offline'): register with set_last_will(topic, msg, True, 1) before connect."""
    return status_message(base_topic, node_id, False)


def _is_number_text(text):
    # A JSON number as the codec formats them: -?(0|[1-9][0-9]*)(\.[0-9]+)?. Checked because
    # the text goes into the payload verbatim: anything else would break every consumer.
    # Indexing, not partition(): single characters cost no allocation on MicroPython.
    n = len(text)
    i = 1 if n and text[0] == "-" else 0
    if i >= n or text[n - 1] == "." or text[i] == ".":
        return False
    if text[i] == "0" and i + 1 < n and text[i + 1] != ".":
        return False
    dot = False
    for k in range(i, n):
        c = text[k]
        if c == ".":
            if dot:
                return False
            dot = True
        elif not "0" <= c <= "9":
            return False
    return True


def _value_text(key, v):
    if v is None:
        return "null"  # a failed read: HA shows "unknown", never a made-up 0
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, str) and _is_number_text(v):
        return v
    raise ValueError("%s: not an exact decimal text: %r" % (key, v))


# '{"key":' and ',"key":' per key, made once: a state payload is built every cycle from the
# same keys (bounded: unusual keys are not cached).
_OPEN: dict = {}
_NEXT: dict = {}
_KEYS_MAX = 64


def _key_text(key, first):
    cache = _OPEN if first else _NEXT
    q = cache.get(key)
    if q is None:
        q = ("{" if first else ",") + json.dumps(key) + ":"
        if len(cache) < _KEYS_MAX:
            cache[key] = q
    return q


def _readings(values, time_iso):
    obj = {}
    for key in values:
        v = values[key]
        obj[key] = None if v is None else Number(_value_text(key, v))
    if time_iso is not None:
        obj["time"] = time_iso
    return obj


def state_payload(values, time_iso=None, uptime_s=None):
    """values {id: exact decimal text or None} -> '{"heat_energy":1234.567,"power":null,...}'
    with the meter's digits unchanged ("200.00" stays 200.00) and "time" when known. Without a
    clock (time_iso None) and with uptime_s given, marked as history marks it: "clock":
    "unknown" and "uptime_s", so the reading can be ordered and matched with its copy on
    history. Built into one preallocated list of cached pieces: this runs every cycle."""
    unknown = time_iso is None and uptime_s is not None
    n = len(values) + (1 if time_iso is not None else 0) + (2 if unknown else 0)
    if not n:
        return "{}"
    parts = [None] * (2 * n + 1)
    i = 0
    for key in values:
        parts[i] = _key_text(key, i == 0)
        parts[i + 1] = _value_text(key, values[key])
        i += 2
    if time_iso is not None:
        parts[i] = _key_text("time", i == 0)
        parts[i + 1] = json.dumps(time_iso)
        i += 2
    if unknown:
        parts[i] = _key_text("clock", i == 0)
        parts[i + 1] = '"unknown"'
        parts[i + 2] = _key_text("uptime_s", False)
        parts[i + 3] = str(int(uptime_s))
        i += 4
    parts[i] = "}"
    return "".join(parts)


def state_message(base_topic, node_id, values, time_iso=None, uptime_s=None):
    """Retained, once per cycle."""
    return topic(base_topic, node_id, STATE), state_payload(values, time_iso, uptime_s)


def history_payload(values, time_iso, seq=None, uptime_s=None):
    """A buffered reading: the state shape with the reading's own "time". A reading taken
    before the clock was set is marked: "time": null, "clock": "unknown", with "uptime_s" (the
    node's seconds since its cold start) to order it. "seq" numbers buffered readings, so a
    consumer can drop the duplicate that at-least-once delivery may bring after a reset."""
    obj = _readings(values, time_iso)
    if time_iso is None:
        obj["time"] = None
        obj["clock"] = "unknown"
        if uptime_s is not None:
            obj["uptime_s"] = uptime_s
    if seq is not None:
        obj["seq"] = seq
    return dumps(obj, True)


def history_message(base_topic, node_id, values, time_iso, seq=None, uptime_s=None):
    """QoS 1, not retained: one message per buffered reading, oldest first."""
    return topic(base_topic, node_id, HISTORY), history_payload(values, time_iso, seq, uptime_s)


def diag_payload(d):
    """Any dict of ints, strings, bools, None, lists and nested dicts -> compact JSON."""
    return dumps(d, True)


def diag_message(base_topic, node_id, d):
    """Retained; every DIAG_EVERY cycles, and at once when something a user watches changes."""
    return topic(base_topic, node_id, DIAG), diag_payload(d)
