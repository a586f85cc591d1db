# Home Assistant discovery and the units topic: sent when a node first learns its meter's units
# and again when what they say changes (units, interval, configuration) or Home Assistant comes
# back online, so this module (and ha.py) is imported only then and dropped afterwards: its
# code and tables need not stay in the ESP32's RAM. Payloads follow DISCOVERY.md;
# docs/mqtt.md is the contract.
#
# Sensor descriptors are tuples (id, name, rid, kind, unit_code, exponent), as in payloads.py.

import json

import ha
from kmp import units
from payloads import DIAG, STATE, STATUS, UNITS, topic

MANUFACTURER = "Kamstrup"
ORIGIN_NAME = "kmp2mqtt"


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
    return _dumps(obj)


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
    # What reading costs the meter's battery: request frames in the last 24 h, all of them.
    ("meter_exchanges", "sensor", "Meter exchanges (24 h)", "{{ value_json.exchanges_24h }}",
     None, None, "measurement"),
)  # fmt: skip
# Attributes of a diagnostic entity, from the same diag message (HA's json_attributes_*).
_ATTRIBUTES = {
    "meter_exchanges": "{{ {'read_budget':value_json.read_budget,"
    "'budget_used_24h':value_json.budget_used_24h,'read_interval_s':value_json.read_interval_s,"
    "'setup_left_s':value_json.setup_left_s,'budget_held':value_json.budget_held}|tojson }}",
}


def _dumps(obj):
    # Compact JSON by the json module, not exactjson: nothing here is an exact meter number,
    # and exactjson's key cache (resident once the state or diag loaded it) would keep every
    # discovery and units key for good after any later announce (~1.8 KB of the ESP32's heap).
    return json.dumps(obj, separators=(",", ":"))


def _slug(text):
    # Entity ids allow [a-z0-9_] only: default_entity_id is the unique_id in lower case.
    out = []
    for ch in text.lower():
        out.append(ch if ("a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_") else "_")
    return "".join(out)


def _topic_id(uid):
    # The unique_id as the topic's object_id, unchanged: config allows [a-zA-Z0-9_-] in node
    # ids and [a-z0-9_] in sensor ids, HA's object_id charset, so distinct unique_ids get
    # distinct topics (lower-casing put Meter-1 and meter_1 on one topic). Anything else,
    # possible only through this API, becomes "_".
    out = []
    for ch in uid:
        ok = "a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch == "_" or ch == "-"
        out.append(ch if ok else "_")
    return "".join(out)


def unique_id(node_id, sid):
    """Stable across boots and unit changes: '<node_id>_<sensor id>'."""
    return "%s_%s" % (node_id, sid)


def discovery_topic(prefix, component, node_id, sid):
    """'<prefix>/<component>/<unique_id>/config': object_id = unique_id, no node_id segment
    (HA's best practice, DISCOVERY.md 2.1)."""
    return "%s/%s/%s/config" % (prefix, component, _topic_id(unique_id(node_id, sid)))


def _value_template(sid):
    # Always the bracket form: value_json.values, .items, .keys, .get ... would render the
    # dict's method, not the key (HA renders with Jinja2, where attribute lookup comes first).
    for ch in sid:
        if not ("a" <= ch <= "z" or "A" <= ch <= "Z" or "0" <= ch <= "9" or ch in "_- "):
            return "{{ value_json[%s] }}" % json.dumps(sid)  # escaped, a Jinja2 string too
    return "{{ value_json['%s'] }}" % sid


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
    ha_version=None,
    diag_every=1,
):
    """Yield (topic, retained config JSON) per entity: one sensor per descriptor whose unit is
    known (a register never read yet is announced once its unit arrives) and, with diagnostics,
    the entities of DIAGNOSTICS.

    device: {"model": meter model (from GetType), "serial": serial number, "sw_version": the
    meter's software revision, "name": optional device name}; firmware: our version (origin);
    update_interval: seconds between reads, expire_after = 3x; ha_version: the Home Assistant
    version as YYYYMM, None for a current one (ha.classes); diag_every: the node publishes diag
    every that many cycles (and on changes), so the diagnostics expire after 3x that. A
    generator: one payload string exists at a time."""
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
        dc, sc, u = ha.classes(kind, rid, code, ha_version)
        if dc is not None:
            cfg["device_class"] = dc
        if sc is not None:
            cfg["state_class"] = sc
        if u is not None:
            cfg["unit_of_measurement"] = u
        p = ha.precision(exponent)
        if p is not None:
            cfg["suggested_display_precision"] = p
        yield discovery_topic(prefix, "sensor", node_id, sid), _dumps(cfg)
    if not diagnostics:
        return
    diag_topic = topic(base_topic, node_id, DIAG)
    if update_interval and diag_every > 1:
        common["expire_after"] = int(update_interval) * 3 * diag_every
    for sid, component, name, template, dc, u, sc in DIAGNOSTICS:
        cfg = _entity(component, node_id, sid, name, diag_topic, template, common)
        cfg["entity_category"] = "diagnostic"
        if dc is not None:
            cfg["device_class"] = dc
        if u is not None:
            cfg["unit_of_measurement"] = u
        if sc is not None:
            cfg["state_class"] = sc
        attributes = _ATTRIBUTES.get(sid)
        if attributes is not None:
            cfg["json_attributes_topic"] = diag_topic
            cfg["json_attributes_template"] = attributes
        yield discovery_topic(prefix, component, node_id, sid), _dumps(cfg)


def topics(prefix, node_id, sensor_ids, diagnostics=True, old_form=False):
    """Yield the config topic of every entity a node with these sensors has (announced or
    not: a sensor whose unit is not known yet still has its topic). old_form: where earlier
    firmware put them (the unique_id lower-cased, '-' as '_'), to remove those once."""
    for sid in sensor_ids:
        yield _topic(prefix, "sensor", node_id, sid, old_form)
    if diagnostics:
        for entry in DIAGNOSTICS:
            yield _topic(prefix, entry[1], node_id, entry[0], old_form)


def _topic(prefix, component, node_id, sid, old_form):
    if not old_form:
        return discovery_topic(prefix, component, node_id, sid)
    return "%s/%s/%s/config" % (prefix, component, _slug(unique_id(node_id, sid)))


def discovery_removals(prefix, node_id, sensor_ids, diagnostics=False):
    """Yield (topic, '') that delete entities from HA: publish each retained (an empty retained
    payload also clears the broker's copy). The node removes by the topics it remembers
    (firmware/announce.py); this is for a known set of sensor ids."""
    for t in topics(prefix, node_id, sensor_ids, diagnostics):
        yield t, ""
