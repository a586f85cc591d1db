"""What Home Assistant accepts in an MQTT discovery config, as a test oracle (the idea of
OpenMQTTGateway's test/unit/test_hmd/test_HassValidators.cpp: check every payload the firmware
emits against a table lifted from HA, not against the firmware's own table).

Sources (see /work/shared/ha/DISCOVERY.md 2.1-2.3):
  home-assistant/core@00eb6680 homeassistant/components/sensor/const.py
      DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES, NON_NUMERIC_DEVICE_CLASSES
  home-assistant/core homeassistant/const.py  UnitOf* enums (exact strings)
  home-assistant.io@0a314403 source/_integrations/mqtt.markdown  abbreviations, object_id
  home-assistant.io@9e4a69ab source/_integrations/sensor.mqtt.markdown  sensor options
The table is a subset (classes a metering node can plausibly emit); a device class missing here
counts as unknown, so the check fails closed.
"""

MEASUREMENT = "measurement"
TOTAL = "total"
TOTAL_INCREASING = "total_increasing"
ALL_STATES = frozenset((MEASUREMENT, TOTAL, TOTAL_INCREASING))
MEASURE_ONLY = frozenset((MEASUREMENT,))
TOTALS = frozenset((TOTAL, TOTAL_INCREASING))

# UnitOf* values, exact strings (superscripts included).
UNIT_OF_ENERGY = frozenset(
    ("J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal",
     "Gcal")
)  # fmt: skip
UNIT_OF_POWER = frozenset(("mW", "W", "kW", "MW", "GW", "TW", "BTU/h"))
UNIT_OF_TEMPERATURE = frozenset(("°C", "°F", "K"))
UNIT_OF_VOLUME = frozenset(("ft³", "CCF", "m³", "L", "mL", "gal", "fl. oz."))
# L/h since HA 2025.5 (core PR #143625).
UNIT_OF_VOLUME_FLOW_RATE = frozenset(
    ("m³/h", "m³/s", "ft³/min", "L/h", "L/min", "L/s", "gal/min", "mL/s")
)
UNIT_OF_PRESSURE = frozenset(
    ("Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi")
)  # fmt: skip
UNIT_OF_INFORMATION = frozenset(
    ("bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB", "KiB",
     "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
)  # fmt: skip
UNIT_OF_ELECTRIC_POTENTIAL = frozenset(("µV", "mV", "V", "kV", "MV"))

# device class -> (accepted units, accepted state classes). None in the unit set = no unit.
SENSOR_CLASSES = {
    "apparent_power": (frozenset(("VA",)), MEASURE_ONLY),
    "battery": (frozenset(("%",)), MEASURE_ONLY),
    "current": (frozenset(("mA", "A")), MEASURE_ONLY),
    "data_size": (UNIT_OF_INFORMATION, ALL_STATES),
    "duration": (frozenset(("d", "h", "min", "s", "ms")), ALL_STATES),
    "energy": (UNIT_OF_ENERGY, TOTALS),
    "energy_storage": (UNIT_OF_ENERGY, MEASURE_ONLY),
    "frequency": (frozenset(("Hz", "kHz", "MHz", "GHz")), MEASURE_ONLY),
    "gas": (frozenset(("CCF", "ft³", "m³")), TOTALS),
    "humidity": (frozenset(("%",)), MEASURE_ONLY),
    "power": (UNIT_OF_POWER, MEASURE_ONLY),
    "power_factor": (frozenset(("%", None)), MEASURE_ONLY),
    "pressure": (UNIT_OF_PRESSURE, MEASURE_ONLY),
    "reactive_power": (frozenset(("var",)), MEASURE_ONLY),
    "signal_strength": (frozenset(("dB", "dBm")), MEASURE_ONLY),
    "temperature": (UNIT_OF_TEMPERATURE, MEASURE_ONLY),
    # HA >= 2025.11 (core PR #147358); UnitOfTemperatureDelta has the same strings.
    "temperature_delta": (UNIT_OF_TEMPERATURE, MEASURE_ONLY),
    "voltage": (UNIT_OF_ELECTRIC_POTENTIAL, MEASURE_ONLY),
    "volume": (UNIT_OF_VOLUME, TOTALS),
    "volume_flow_rate": (UNIT_OF_VOLUME_FLOW_RATE, MEASURE_ONLY),
    "volume_storage": (UNIT_OF_VOLUME, MEASURE_ONLY),
    "water": (frozenset(("CCF", "ft³", "m³", "gal", "L")), TOTALS),
    "weight": (frozenset(("µg", "mg", "g", "kg", "oz", "lb", "st")), ALL_STATES),
    # Non-numeric (NON_NUMERIC_DEVICE_CLASSES): no unit, no state class.
    "date": (frozenset((None,)), frozenset()),
    "enum": (frozenset((None,)), frozenset()),
    "timestamp": (frozenset((None,)), frozenset()),
}

BINARY_SENSOR_CLASSES = frozenset(
    ("battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
     "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
     "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
     "tamper", "update", "vibration", "window")
)  # fmt: skip

# What older Home Assistant versions do not accept yet, as YYYYMM: the first version with it,
# and what an older one does. An unknown device class rejects the whole config; a unit not
# valid for its class yet creates the entity and logs a warning at every start (HA 2025.4 says
# it stops working in 2025.7).
SINCE = {
    ("device_class", "temperature_delta"): (202511, "rejects"),  # core PR #147358
    ("unit", "volume_flow_rate", "L/h"): (202505, "warns about"),  # core PR #143625
}

# Attribute access in a Jinja2 template finds a dict's methods before its keys: a state key with
# one of these names must be read as value_json['key'].
DICT_METHODS = frozenset(
    ("clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault",
     "update", "values")
)  # fmt: skip

# Spellings that look like units but that HA does not accept under any device class: KMP's own
# (units.py), ESPHome's kamstrup_kmp defects, and OpenMQTTGateway's "C must be °C".
WRONG_SPELLINGS = frozenset(("m3", "m3/h", "l/h", "l", "C", "kCal", "Cal", "°K", "l/min", "W/h"))

# Abbreviations (mqtt.markdown) for the keys this validator looks at.
ABBREVIATIONS = {
    "uniq_id": "unique_id",
    "stat_t": "state_topic",
    "val_tpl": "value_template",
    "dev_cla": "device_class",
    "stat_cla": "state_class",
    "unit_of_meas": "unit_of_measurement",
    "sug_dsp_prc": "suggested_display_precision",
    "exp_aft": "expire_after",
    "avty_t": "availability_topic",
    "avty": "availability",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "ent_cat": "entity_category",
    "dev": "device",
    "o": "origin",
    "def_ent_id": "default_entity_id",
    "pl_on": "payload_on",
    "pl_off": "payload_off",
    "json_attr_t": "json_attributes_topic",
    "frc_upd": "force_update",
}
DEVICE_ABBREVIATIONS = {
    "ids": "identifiers",
    "mf": "manufacturer",
    "mdl": "model",
    "mdl_id": "model_id",
    "sn": "serial_number",
    "sw": "sw_version",
    "hw": "hw_version",
    "cu": "configuration_url",
    "sa": "suggested_area",
    "cns": "connections",
}
ORIGIN_ABBREVIATIONS = {"sw": "sw_version", "url": "support_url"}

COMMON_KEYS = frozenset(
    ("name", "unique_id", "default_entity_id", "state_topic", "value_template", "device_class",
     "availability_topic", "availability", "availability_mode", "payload_available",
     "payload_not_available", "entity_category", "device", "origin", "expire_after", "qos",
     "icon", "json_attributes_topic", "json_attributes_template", "force_update",
     "enabled_by_default", "encoding", "platform", "object_id")
)  # fmt: skip
SENSOR_KEYS = COMMON_KEYS | {
    "state_class",
    "unit_of_measurement",
    "suggested_display_precision",
    "last_reset_value_template",
    "options",
}
BINARY_SENSOR_KEYS = COMMON_KEYS | {"payload_on", "payload_off", "off_delay"}
DEVICE_KEYS = frozenset(
    ("identifiers", "connections", "name", "manufacturer", "model", "model_id", "serial_number",
     "sw_version", "hw_version", "configuration_url", "suggested_area", "via_device")
)  # fmt: skip
ORIGIN_KEYS = frozenset(("name", "sw_version", "support_url"))
_SLUG = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_OBJECT_ID = _SLUG | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ-")


def expand(payload, table=ABBREVIATIONS):
    """The payload with abbreviated keys written out (HA does the same before validating)."""
    out = {}
    for key, value in payload.items():
        out[table.get(key, key)] = value
    return out


def problems(payload, component="sensor", kind=None, ha_version=None):
    """Every reason HA would reject or mis-handle this config, as strings ([] = fine).
    kind: 'total' / 'measure' / 'info' for a meter register (kmp.registers kind name), to
    catch total_increasing on something that is not a counter and the reverse. ha_version:
    YYYYMM of the HA that reads it (None: a current one)."""
    out = []
    p = expand(payload)
    allowed_keys = SENSOR_KEYS if component == "sensor" else BINARY_SENSOR_KEYS
    for key in p:
        if key not in allowed_keys:
            out.append("unknown option %r" % key)
    if "object_id" in p:
        out.append("object_id is deprecated (HA 2025.10, removed 2026.4): use default_entity_id")
    for key in ("unique_id", "state_topic", "device"):
        if not p.get(key):
            out.append("missing %s" % key)
    if "name" not in p:
        out.append("missing name")
    ent = p.get("default_entity_id")
    if ent is not None:
        domain, _, slug = ent.partition(".")
        if domain != component or not slug or not set(slug) <= _SLUG:
            out.append("default_entity_id %r is not '%s.<lowercase slug>'" % (ent, component))
    tpl = p.get("value_template")
    if tpl is not None and "value_json" not in tpl and "value" not in tpl:
        out.append("value_template does not read the payload: %r" % tpl)
    if isinstance(tpl, str):
        for part in tpl.split("value_json.")[1:]:
            name = part.split(" ")[0].split("}")[0].split(")")[0].split("|")[0]
            if name in DICT_METHODS:
                out.append("value_json.%s renders the dict's method, not the key" % name)
    if ha_version is not None and component == "sensor":
        dc, unit = p.get("device_class"), p.get("unit_of_measurement")
        rule = SINCE.get(("device_class", dc)) or SINCE.get(("unit", dc, unit))
        if rule is not None and ha_version < rule[0]:
            since, does = rule
            out.append("HA %d.%d %s device_class %s with %s (since %d.%d)"
                       % (ha_version // 100, ha_version % 100, does, dc, unit, since // 100,
                          since % 100))  # fmt: skip
    exp = p.get("expire_after")
    if exp is not None and (type(exp) is not int or exp <= 0):
        out.append("expire_after must be a positive int, got %r" % (exp,))
    cat = p.get("entity_category")
    if cat is not None and cat not in ("diagnostic", "config"):
        out.append("entity_category %r" % (cat,))
    if "availability_topic" in p and "availability" in p:
        out.append("availability_topic and availability are exclusive")
    out.extend(_device_problems(p.get("device")))
    out.extend(_origin_problems(p.get("origin")))
    if component == "sensor":
        out.extend(_sensor_problems(p, kind))
    elif component == "binary_sensor":
        dc = p.get("device_class")
        if dc is not None and dc not in BINARY_SENSOR_CLASSES:
            out.append("unknown binary_sensor device_class %r" % dc)
    else:
        out.append("component %r not covered by these rules" % component)
    return out


def _sensor_problems(p, kind):
    out = []
    dc = p.get("device_class")
    unit = p.get("unit_of_measurement")
    sc = p.get("state_class")
    if unit is not None and (not isinstance(unit, str) or unit in WRONG_SPELLINGS):
        out.append("unit %r is not a unit HA knows (exact spelling, e.g. m³ not m3)" % (unit,))
    if sc is not None and sc not in ALL_STATES:
        out.append("unknown state_class %r" % (sc,))
    if dc is not None:
        if dc not in SENSOR_CLASSES:
            out.append("unknown sensor device_class %r" % (dc,))
        else:
            units, states = SENSOR_CLASSES[dc]
            if unit not in units:
                out.append("unit %r not accepted for device_class %s" % (unit, dc))
            if sc is not None and sc not in states:
                out.append("state_class %s not allowed for device_class %s" % (sc, dc))
    if kind is not None:
        if sc == TOTAL_INCREASING and kind != "total":
            out.append(
                "total_increasing on a %s register (only counters that never go down)" % kind
            )
        if kind == "total" and sc not in TOTALS:
            out.append("a counter without total/total_increasing gets no long-term statistics")
        if kind == "measure" and sc != MEASUREMENT:
            out.append("a measurement without state_class measurement")
    prec = p.get("suggested_display_precision")
    if prec is not None and (type(prec) is not int or prec < 0):
        out.append("suggested_display_precision must be an int >= 0, got %r" % (prec,))
    return out


def _device_problems(dev):
    out = []
    if not isinstance(dev, dict):
        return ["device must be an object"] if dev else []
    d = expand(dev, DEVICE_ABBREVIATIONS)
    for key in d:
        if key not in DEVICE_KEYS:
            out.append("unknown device option %r" % key)
    ids = d.get("identifiers")
    if not ids and not d.get("connections"):
        out.append("device needs identifiers (or connections)")
    if ids is not None and not (isinstance(ids, (list, str)) and ids):
        out.append("device identifiers must be a non-empty list or string")
    return out


def _origin_problems(origin):
    if origin is None:
        return []
    if not isinstance(origin, dict):
        return ["origin must be an object"]
    o = expand(origin, ORIGIN_ABBREVIATIONS)
    out = ["unknown origin option %r" % k for k in o if k not in ORIGIN_KEYS]
    if not o.get("name"):
        out.append("origin needs a name")
    return out


# The energy dashboard's gas source (where district heating goes: HA has no heat source) takes
# device_class energy in these units. Current HA: every UnitOfEnergy (energy/validate.py,
# GAS_USAGE_UNITS); HA 2025.4 and older: these five only.
GAS_SOURCE_UNITS_2025_4 = frozenset(("GJ", "kWh", "MJ", "MWh", "Wh"))


def gas_source_problems(payload, ha_version=None):
    """Why the energy dashboard would refuse this sensor as a gas source ([] = it takes it)."""
    p = expand(payload)
    dc, unit, sc = p.get("device_class"), p.get("unit_of_measurement"), p.get("state_class")
    out = []
    if dc not in ("energy", "gas"):
        out.append("device_class %s is not energy or gas" % dc)
    elif dc == "energy":
        allowed = UNIT_OF_ENERGY
        if ha_version is not None and ha_version <= 202504:
            allowed = GAS_SOURCE_UNITS_2025_4
        if unit not in allowed:
            out.append("the gas source does not take energy in %s" % unit)
    if sc not in ("measurement", "total", "total_increasing"):
        out.append("state_class %s" % sc)
    return out


def check_discovery(payload, component="sensor", kind=None, ha_version=None):
    """Raise AssertionError listing every problem of one discovery config (a dict)."""
    found = problems(payload, component, kind, ha_version)
    if found:
        raise AssertionError("invalid %s discovery config:\n  %s" % (component, "\n  ".join(found)))


def component_of(topic, prefix="homeassistant"):
    """'homeassistant/sensor/<object_id>/config' -> 'sensor'. Fails on the node_id form
    (<prefix>/<component>/<node_id>/<object_id>/config): object_id = unique_id is the best
    practice, and on an object_id outside [a-zA-Z0-9_-]."""
    if not topic.startswith(prefix + "/"):
        raise AssertionError("%r is not under the discovery prefix %r" % (topic, prefix))
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) != 3 or parts[2] != "config":
        raise AssertionError("not <prefix>/<component>/<object_id>/config: %r" % topic)
    if not parts[1] or not set(parts[1]) <= _OBJECT_ID:
        raise AssertionError("object_id %r outside [a-zA-Z0-9_-]" % parts[1])
    return parts[0]


def render(template, value_json):
    """A value_template as Home Assistant renders it: sandboxed Jinja2, value_json = the parsed
    payload (jinja2 is in requirements-dev.txt)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment().from_string(template).render(value_json=value_json)
