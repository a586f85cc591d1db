# MQTT topics and payloads: what the node publishes, as (topic, payload text) pairs. Pure
# functions over plain inputs, portable (MicroPython 1.29 + CPython); docs/mqtt.md is the
# contract. Meter values arrive as exact decimal text and go into JSON verbatim (exactjson):
# an ESP32 float would turn 1234.567 into 1234.5670166.
#
# Sensor descriptors are tuples (id, name, rid, kind, unit_code, exponent): id is the key in
# the state JSON ('heat_energy'), kind is kmp.registers TOTAL/MEASURE/INFO, unit_code and
# exponent are what the meter reported (None until the register has been read once).

import json

import ha
from exactjson import Number, dumps
from kmp import units

STATUS = "status"
STATE = "state"
UNITS = "units"
DIAG = "diag"
HISTORY = "history"
CMD = "cmd"

ONLINE = "online"
OFFLINE = "offline"

MANUFACTURER = "Kamstrup"
ORIGIN_NAME = "kmp2mqtt"


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
    s = text[1:] if text[:1] == "-" else text
    whole, dot, frac = s.partition(".")
    if not whole.isdigit() or (len(whole) > 1 and whole[0] == "0"):
        return False
    return not dot or frac.isdigit()


def _readings(values, time_iso):
    obj = {}
    for key in values:
        v = values[key]
        if v is None:
            obj[key] = None  # a failed read: HA shows "unknown", never a made-up 0
        elif isinstance(v, int) and not isinstance(v, bool):
            obj[key] = v
        elif isinstance(v, str) and _is_number_text(v):
            obj[key] = Number(v)
        else:
            raise ValueError("%s: not an exact decimal text: %r" % (key, v))
    if time_iso is not None:
        obj["time"] = time_iso
    return obj


def state_payload(values, time_iso=None):
    """values {id: exact decimal text or None} -> '{"heat_energy":1234.567,"power":null,...}'
    with the meter's digits unchanged ("200.00" stays 200.00) and "time" when known."""
    return dumps(_readings(values, time_iso), True)


def state_message(base_topic, node_id, values, time_iso=None):
    """Retained, once per cycle."""
    return topic(base_topic, node_id, STATE), state_payload(values, time_iso)


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
    """Retained, once per cycle."""
    return topic(base_topic, node_id, DIAG), diag_payload(d)


def units_payload(sensors):
    """For consumers other than HA: per sensor id its unit (HA spelling), the meter's own unit
    name, unit code, register id and exponent; nulls while a register has never been read."""
    obj = {}
    for sid, name, rid, _kind, code, exponent in sensors:
        obj[sid] = {
            "name": name,
            "unit": ha.unit(code),
            "kmp_unit": None if code is None else units.unit_name(code),
            "unit_code": code,
            "rid": rid,
            "exponent": exponent,
        }
    return dumps(obj, True)


def units_message(base_topic, node_id, sensors):
    """Retained; published when the meter's units are first known and whenever they change."""
    return topic(base_topic, node_id, UNITS), units_payload(sensors)


# -- Home Assistant discovery ------------------------------------------------------------------

# Diagnostic entities read from the diag topic: (id, component, name, value_template,
# device_class, unit, state_class). The templates name the diag keys of docs/mqtt.md.
_LINK_ERRORS = "{% set l = value_json.link %}{{ l.timeouts + l.crc_errors + l.frame_errors }}"
_REACHABLE = (
    "{% set r = value_json.get('meter_reachable') %}"
    "{% if r is none %}None{% elif r %}OFF{% else %}ON{% endif %}"
)
DIAGNOSTICS = (
    ("rssi", "sensor", "Wi-Fi signal", "{{ value_json.rssi }}", "signal_strength", "dBm",
     "measurement"),
    ("uptime", "sensor", "Uptime", "{{ value_json.uptime_s }}", "duration", "s", None),
    ("free_heap", "sensor", "Free heap", "{{ value_json.free_heap }}", "data_size", "B",
     "measurement"),
    ("link_errors", "sensor", "Meter link errors", _LINK_ERRORS, None, None, "total_increasing"),
    ("last_error", "sensor", "Last error", "{{ (value_json.last_error or 'none')[:255] }}", None,
     None, None),
    # ON = problem: the meter did not answer in the last cycle (optical eye asleep, head off).
    ("meter_problem", "binary_sensor", "Meter not answering", _REACHABLE, "problem", None, None),
)  # fmt: skip


def _slug(text):
    # Discovery topic segments and entity ids allow [a-zA-Z0-9_-] and [a-z0-9_] respectively.
    out = []
    for ch in text.lower():
        out.append(ch if ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_") else "_")
    return "".join(out)


def unique_id(node_id, sid):
    """Stable across boots and unit changes: '<node_id>_<sensor id>'."""
    return "%s_%s" % (node_id, sid)


def discovery_topic(prefix, component, node_id, sid):
    """'<prefix>/<component>/<unique_id>/config': object_id = unique_id, no node_id segment
    (HA's best practice, DISCOVERY.md 2.1)."""
    return "%s/%s/%s/config" % (prefix, component, _slug(unique_id(node_id, sid)))


def _value_template(sid):
    ok = sid and not ("0" <= sid[0] <= "9")
    for ch in sid:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "_"):
            ok = False
    if ok:
        return "{{ value_json.%s }}" % sid
    return "{{ value_json[%s] }}" % json.dumps(sid)


def _device(node_id, device):
    model = device.get("model")
    serial = device.get("serial")
    name = device.get("name") or ("Kamstrup %s" % serial if serial is not None else node_id)
    dev = {"identifiers": [node_id], "name": name, "manufacturer": MANUFACTURER}
    if model is not None:
        dev["model"] = str(model)
    if serial is not None:
        dev["serial_number"] = str(serial)
    if device.get("sw_version") is not None:
        dev["sw_version"] = str(device["sw_version"])  # the meter's software revision
    return dev


def _origin(firmware, url):
    origin = {"name": ORIGIN_NAME, "sw_version": firmware}
    if url:
        origin["support_url"] = url
    return origin


def _entity(component, node_id, sid, name, state_topic, template, common):
    uid = unique_id(node_id, sid)
    cfg = {
        "name": name,
        "unique_id": uid,
        "default_entity_id": "%s.%s" % (component, _slug(uid)),  # never object_id (HA 2026.4)
        "state_topic": state_topic,
        "value_template": template,
    }
    for key in common:
        cfg[key] = common[key]
    return cfg


def discovery_messages(
    node_id,
    base_topic,
    prefix,
    device,
    sensors,
    update_interval,
    firmware,
    origin_url=None,
    diagnostics=True,
    legacy=False,
):
    """Yield (topic, retained config JSON) per entity: one sensor per descriptor whose unit is
    known (a register never read yet is announced once its unit arrives) and, with diagnostics,
    the entities of DIAGNOSTICS.

    device: {"model": meter model (from GetType), "serial": serial number, "sw_version": the
    meter's software revision, "name": optional device name}; firmware: our version (origin);
    update_interval: seconds between reads, expire_after = 3x; legacy: HA before 2025.11
    (ha.classes). A generator: one payload string exists at a time."""
    common = {"availability_topic": topic(base_topic, node_id, STATUS)}
    if update_interval:
        # Staleness, not LWT, tells HA a reading is old: a missed cycle or two is tolerated.
        common["expire_after"] = int(update_interval) * 3
    common["device"] = _device(node_id, device)
    common["origin"] = _origin(firmware, origin_url)
    state_topic = topic(base_topic, node_id, STATE)
    for sid, name, rid, kind, code, exponent in sensors:
        if code is None:
            continue
        cfg = _entity("sensor", node_id, sid, name, state_topic, _value_template(sid), common)
        dc, sc, u = ha.classes(kind, rid, code, legacy)
        if dc is not None:
            cfg["device_class"] = dc
        if sc is not None:
            cfg["state_class"] = sc
        if u is not None:
            cfg["unit_of_measurement"] = u
        p = ha.precision(exponent)
        if p is not None:
            cfg["suggested_display_precision"] = p
        yield discovery_topic(prefix, "sensor", node_id, sid), dumps(cfg, True)
    if not diagnostics:
        return
    diag_topic = topic(base_topic, node_id, DIAG)
    for sid, component, name, template, dc, u, sc in DIAGNOSTICS:
        cfg = _entity(component, node_id, sid, name, diag_topic, template, common)
        cfg["entity_category"] = "diagnostic"
        if dc is not None:
            cfg["device_class"] = dc
        if u is not None:
            cfg["unit_of_measurement"] = u
        if sc is not None:
            cfg["state_class"] = sc
        yield discovery_topic(prefix, component, node_id, sid), dumps(cfg, True)


def discovery_removals(prefix, node_id, sensor_ids, diagnostics=False):
    """Yield (topic, '') that delete entities from HA: publish each retained (an empty retained
    payload also clears the broker's copy). For sensors dropped from the config, or everything
    (diagnostics=True too) when discovery is switched off."""
    for sid in sensor_ids:
        yield discovery_topic(prefix, "sensor", node_id, sid), ""
    if diagnostics:
        for entry in DIAGNOSTICS:
            yield discovery_topic(prefix, entry[1], node_id, entry[0]), ""
