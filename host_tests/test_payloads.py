"""lib/payloads.py and lib/ha.py on CPython: topics, exact numbers in the state JSON, units,
diag, and every Home Assistant discovery config checked against ha_rules (HA's own tables)."""

import itertools
import json
import runpy
from decimal import Decimal
from pathlib import Path

import pytest

import discovery as disco
import ha
import ha_rules
import payloads
from kmp import registers, units

ROOT = Path(__file__).resolve().parent.parent
NODE = "kamstrup_67051653"
BASE = "kmp2mqtt"
PREFIX = "homeassistant"
DEVICE = {"model": "MULTICAL 403", "serial": 67051653, "sw_version": "F1"}
FW = "0.1.0"
KIND_NAMES = {registers.TOTAL: "total", registers.MEASURE: "measure", registers.INFO: "info"}

# The seven ESPHome kamstrup_kmp sensors with the unit codes real meters report (PROTOCOL.md
# units; cenobitedk#4: "My Multical 403 is also reporting Energy in kWh and not MWh").
REALISTIC_UNITS = {
    "heat_energy": (8, 2, 3, 12, 7, 1, 10),  # GJ kWh MWh Gcal MJ Wh kCal
    "power": (22, 21, 23),  # kW W MW
    "temp1": (37,),  # °C
    "temp2": (37,),
    "temp_diff": (38, 37),  # K, and °C from a meter that spells the difference so
    "flow": (41, 42),  # l/h m³/h
    "volume": (40, 39),  # m³ l
}
EXPECTED = {  # (sensor, unit code) -> (device_class, state_class, unit)
    ("heat_energy", 8): ("energy", "total_increasing", "GJ"),
    ("heat_energy", 2): ("energy", "total_increasing", "kWh"),
    ("heat_energy", 3): ("energy", "total_increasing", "MWh"),
    ("heat_energy", 12): ("energy", "total_increasing", "Gcal"),
    ("heat_energy", 7): ("energy", "total_increasing", "MJ"),
    ("heat_energy", 1): ("energy", "total_increasing", "Wh"),
    ("heat_energy", 10): ("energy", "total_increasing", "kcal"),
    ("power", 22): ("power", "measurement", "kW"),
    ("power", 21): ("power", "measurement", "W"),
    ("power", 23): ("power", "measurement", "MW"),
    ("temp1", 37): ("temperature", "measurement", "°C"),
    ("temp2", 37): ("temperature", "measurement", "°C"),
    ("temp_diff", 38): ("temperature_delta", "measurement", "K"),
    ("temp_diff", 37): ("temperature_delta", "measurement", "°C"),
    ("flow", 41): ("volume_flow_rate", "measurement", "L/h"),
    ("flow", 42): ("volume_flow_rate", "measurement", "m³/h"),
    ("volume", 40): ("volume", "total_increasing", "m³"),
    ("volume", 39): ("volume", "total_increasing", "L"),
}
EXPONENTS = {
    "heat_energy": -3,
    "power": -1,
    "temp1": -2,
    "temp2": -2,
    "temp_diff": -2,
    "flow": 0,
    "volume": -2,
}


def sensor(key, code, exponent=None):
    rid, _, kind = registers.by_key(key)
    label = key.replace("_", " ").capitalize()
    return (key, label, rid, kind, code, EXPONENTS.get(key) if exponent is None else exponent)


def esphome_sensors(choice=0):
    return [
        sensor(k, REALISTIC_UNITS[k][choice % len(REALISTIC_UNITS[k])])
        for k in registers.SENSOR_KEYS
    ]


def discovery(sensors, **kw):
    args = dict(
        node_id=NODE,
        base_topic=BASE,
        prefix=PREFIX,
        device=DEVICE,
        sensors=sensors,
        update_interval=60,
        firmware=FW,
    )
    args.update(kw)
    return [(t, json.loads(p)) for t, p in disco.discovery_messages(**args)]


# -- topics ------------------------------------------------------------------------------------


def test_topics():
    assert payloads.topic(BASE, NODE, payloads.STATE) == "kmp2mqtt/kamstrup_67051653/state"
    leaves = (
        payloads.STATUS,
        payloads.STATE,
        payloads.UNITS,
        payloads.DIAG,
        payloads.HISTORY,
        payloads.CMD,
    )
    assert leaves == ("status", "state", "units", "diag", "history", "cmd")
    assert payloads.status_message(BASE, NODE) == ("kmp2mqtt/kamstrup_67051653/status", "online")
    assert payloads.last_will(BASE, NODE) == ("kmp2mqtt/kamstrup_67051653/status", "offline")
    assert payloads.status_message(BASE, NODE, False) == payloads.last_will(BASE, NODE)


# -- state and history ------------------------------------------------------------------------

VALUES = {
    "heat_energy": "12.345",
    "power": None,
    "temp1": "200.00",
    "temp2": "0.05",
    "temp_diff": "-1.5",
    "flow": "255000",
    "volume": "0",
}


def test_state_numbers_are_the_meters_text():
    topic, raw = payloads.state_message(BASE, NODE, VALUES, "2026-11-23T12:00:00Z")
    assert topic == "kmp2mqtt/kamstrup_67051653/state"
    for piece in (
        '"heat_energy":12.345',
        '"power":null',
        '"temp1":200.00',
        '"temp2":0.05',
        '"temp_diff":-1.5',
        '"flow":255000',
        '"volume":0',
        '"time":"2026-11-23T12:00:00Z"',
    ):
        assert piece in raw, (piece, raw)
    assert " " not in raw  # compact
    obj = json.loads(raw, parse_float=Decimal)
    assert obj["heat_energy"] == Decimal("12.345")
    assert str(obj["temp1"]) == "200.00"  # the meter's resolution survives the round trip
    assert obj["power"] is None
    assert obj["flow"] == 255000 and isinstance(obj["flow"], int)
    assert list(obj) == list(VALUES) + ["time"]


def test_state_without_time():
    raw = payloads.state_payload({"heat_energy": "1234.567"})
    assert raw == '{"heat_energy":1234.567}'
    assert "time" not in json.loads(raw)
    assert payloads.state_payload({}) == "{}"


def test_state_all_failed_is_all_null():
    raw = payloads.state_payload(dict.fromkeys(registers.SENSOR_KEYS), "2026-11-23T12:00:00Z")
    obj = json.loads(raw)
    assert all(obj[k] is None for k in registers.SENSOR_KEYS)


def test_state_values_from_the_codec_are_exact():
    from kmp.value import format_decimal

    cases = [
        (12345, -3),
        (20000, -2),
        (5, -3),
        (-15, -1),
        (255, 3),
        (0, -2),
        (4294967295, -3),
        (123456789, 0),
    ]
    values = {"v%d" % i: format_decimal(m, e) for i, (m, e) in enumerate(cases)}
    raw = payloads.state_payload(values)
    obj = json.loads(raw, parse_float=Decimal)
    for i, (m, e) in enumerate(cases):
        assert '"v%d":%s' % (i, format_decimal(m, e)) in raw
        assert Decimal(obj["v%d" % i]) == Decimal(m).scaleb(e)


def test_state_accepts_ints():
    assert (
        payloads.state_payload({"info_code": 0, "hours": 81234}) == '{"info_code":0,"hours":81234}'
    )


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "-",
        "1e5",
        "NaN",
        "Infinity",
        "01",
        "-01.5",
        ".5",
        "5.",
        "1.2.3",
        "12,3",
        " 1",
        "1 ",
        "+1",
        "0x10",
        1.5,
        True,
        b"1",
        ["1"],
    ],
)
def test_state_rejects_anything_but_exact_decimal_text(bad):
    with pytest.raises(ValueError):
        payloads.state_payload({"x": bad})


def test_history_is_state_plus_time():
    topic, raw = payloads.history_message(BASE, NODE, VALUES, "2026-11-23T11:00:00Z")
    assert topic == "kmp2mqtt/kamstrup_67051653/history"
    assert raw == payloads.state_payload(VALUES, "2026-11-23T11:00:00Z")
    _, raw = payloads.history_message(BASE, NODE, VALUES, "2026-11-23T11:00:00Z", 41, 900)
    obj = json.loads(raw)
    assert obj["seq"] == 41 and obj["time"] == "2026-11-23T11:00:00Z" and "uptime_s" not in obj


def test_history_before_the_clock_was_set_is_marked():
    _, raw = payloads.history_message(BASE, NODE, {"volume": "1.00"}, None, 7, 123)
    assert json.loads(raw) == {"volume": 1.0, "time": None, "clock": "unknown", "uptime_s": 123,
                               "seq": 7}  # fmt: skip


# -- diag and units ----------------------------------------------------------------------------

DIAG = {
    "firmware": "0.1.0",
    "uptime_s": 3600,
    "boots": 3,
    "rssi": -67,
    "free_heap": 81234,
    "errors": 1,
    "last_error": "meter: no answer",
    "meter_reachable": False,
    "unsupported": [99],
    "link": {"requests": 10, "timeouts": 2, "crc_errors": 1, "frame_errors": 0, "last_error": None},
}


def test_diag_round_trip():
    topic, raw = payloads.diag_message(BASE, NODE, DIAG)
    assert topic == "kmp2mqtt/kamstrup_67051653/diag"
    assert json.loads(raw) == DIAG
    assert '"meter_reachable":false' in raw and '"last_error":null' in raw
    assert payloads.diag_payload({}) == "{}"


def test_units_payload():
    sensors = esphome_sensors() + [
        ("e8", "m³·T1 (E8)", 0x61, registers.TOTAL, 43, 0),
        ("late", "Not read yet", 0x3D, registers.TOTAL, None, None),
    ]
    topic, raw = disco.units_message(BASE, NODE, sensors)
    assert topic == "kmp2mqtt/kamstrup_67051653/units"
    obj = json.loads(raw)
    assert list(obj) == [s[0] for s in sensors]
    assert obj["heat_energy"] == {
        "name": "Heat energy",
        "unit": "GJ",
        "kmp_unit": "GJ",
        "unit_code": 8,
        "rid": 60,
        "exponent": -3,
    }
    assert obj["flow"]["unit"] == "L/h" and obj["flow"]["kmp_unit"] == "l/h"
    assert obj["volume"]["unit"] == "m³" and obj["volume"]["unit_code"] == 40
    assert obj["temp1"]["unit"] == "°C"
    assert obj["e8"]["unit"] == "m³×°C"  # no HA spelling: the meter's name passes through
    assert obj["late"] == {
        "name": "Not read yet",
        "unit": None,
        "kmp_unit": None,
        "unit_code": None,
        "rid": 0x3D,
        "exponent": None,
    }


# -- ha.py -------------------------------------------------------------------------------------


@pytest.mark.parametrize("key,code", [(k, c) for k in REALISTIC_UNITS for c in REALISTIC_UNITS[k]])
def test_ha_classes_for_the_esphome_sensors(key, code):
    rid, _, kind = registers.by_key(key)
    assert ha.classes(kind, rid, code) == EXPECTED[(key, code)]


def test_ha_unit_spelling():
    spelled = {
        2: "kWh",
        9: "cal",
        10: "kcal",
        11: "Mcal",
        37: "°C",
        38: "K",
        39: "L",
        40: "m³",
        41: "L/h",
        42: "m³/h",
        52: "bar",
        46: "h",
        62: "d",
        70: "gal",
        71: "gal/min",
        43: "m³×°C",
        13: "varh",
        57: "GJ×10",
    }
    for code, text in spelled.items():
        assert ha.unit(code) == text, (code, units.unit_name(code))
    for code in (None, 0, 47, 48, 49, 50, 51, 53, 54, 59, 63, 64, 72, 73, 74, 75, 200, -1):
        assert ha.unit(code) is None, code


def test_ha_unknown_units_get_no_device_class():
    # A counter in an unit HA has no device class for keeps total_increasing (it still only
    # grows, and gets statistics); a measurement keeps measurement; INFO gets no state class.
    assert ha.classes(registers.TOTAL, 0x0061, 43) == (None, "total_increasing", "m³×°C")
    assert ha.classes(registers.MEASURE, 0x0058, 0) == (None, "measurement", None)
    assert ha.classes(registers.MEASURE, 0x1234, 200) == (None, "measurement", None)
    assert ha.classes(registers.INFO, 0x0063, 0) == (None, None, None)
    assert ha.classes(registers.INFO, 0x03EA, 47) == (None, None, None)  # clock: a format
    # Valid unit, impossible pair: energy as a measurement, volume flow as a total.
    assert ha.classes(registers.MEASURE, 0x1234, 8) == (None, "measurement", "GJ")
    assert ha.classes(registers.TOTAL, 0x1234, 22) == (None, "total_increasing", "kW")
    # INFO registers with a real unit keep the device class, without a state class.
    assert ha.classes(registers.INFO, 0x0080, 22) == ("power", None, "kW")
    assert ha.classes(registers.INFO, 0x03EC, 46) == ("duration", None, "h")


def test_ha_version_drops_each_new_device_class_before_its_release_not_units():
    # temperature_delta: HA 2025.11 (core PR #147358); L/h flow: HA 2025.5 (core PR #143625)
    dt = (registers.MEASURE, 0x0059, 38)
    dt_c = (registers.MEASURE, 0x0059, 37)  # a meter that says °C for the difference
    lh = (registers.MEASURE, 0x004A, 41)
    for version, dt_class, lh_class in (
        (None, "temperature_delta", "volume_flow_rate"),  # a current HA
        (202611, "temperature_delta", "volume_flow_rate"),
        (202511, "temperature_delta", "volume_flow_rate"),
        (202510, None, "volume_flow_rate"),  # 2025.5 .. 2025.10 know L/h, not temperature_delta
        (202505, None, "volume_flow_rate"),
        (202504, None, None),
        (202312, None, None),
    ):
        assert ha.classes(*dt, version) == (dt_class, "measurement", "K"), version
        assert ha.classes(*dt_c, version) == (dt_class, "measurement", "°C"), version
        assert ha.classes(*lh, version) == (lh_class, "measurement", "L/h"), version
    assert ha.classes(registers.MEASURE, 0x004A, 42, 202001)[0] == "volume_flow_rate"  # m³/h
    assert ha.classes(registers.TOTAL, 0x003C, 8, 202001)[0] == "energy"
    assert ha.classes(registers.MEASURE, 0x0056, 37, 202001)[0] == "temperature"


def test_ha_kilovolt_is_a_voltage():
    assert units.unit_name(35) == "kV"
    assert ha.classes(registers.MEASURE, 0x1234, 35) == ("voltage", "measurement", "kV")
    # every unit HA accepts for a device class gets that class (kV was accepted, never given)
    for code in range(75):
        u = ha.unit(code)
        for dc, accepted in ha._ALLOWED_UNITS.items():
            if u in accepted and dc not in (ha.TEMPERATURE_DELTA,):
                assert ha.classes(registers.INFO, 0x1234, code)[0] is not None, (code, u)


def test_ha_precision():
    assert [ha.precision(e) for e in (-3, -2, -1, 0, 2, None)] == [3, 2, 1, 0, 0, None]


def test_ha_never_pairs_a_device_class_with_a_unit_ha_rejects():
    # Exhaustive: every register of the table (and unknown ones) x every unit code x kind.
    rids = [e[0] for e in registers.TABLE] + [0x1234]
    for rid, code, kind, version in itertools.product(
        rids,
        range(-1, 80),
        (registers.TOTAL, registers.MEASURE, registers.INFO),
        (None, 202504, 202505, 202511),
    ):
        dc, sc, unit = ha.classes(kind, rid, code, version)
        cfg = {"name": "x", "unique_id": "u", "state_topic": "t", "device": {"identifiers": ["d"]}}
        for k, v in (("device_class", dc), ("state_class", sc), ("unit_of_measurement", unit)):
            if v is not None:
                cfg[k] = v
        ha_rules.check_discovery(cfg, "sensor", KIND_NAMES[kind], version)


# -- discovery ---------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", range(7))
def test_discovery_for_all_esphome_sensors_is_valid(choice):
    sensors = esphome_sensors(choice)
    msgs = discovery(sensors)
    by_id = {}
    for topic, cfg in msgs:
        component = ha_rules.component_of(topic)
        kind = None
        if cfg["state_topic"].endswith("/state"):
            kind = KIND_NAMES[registers.by_key(cfg["unique_id"][len(NODE) + 1 :])[2]]
        ha_rules.check_discovery(cfg, component, kind)
        by_id[cfg["unique_id"]] = cfg
    for key, label, _rid, _kind, code, exponent in sensors:
        cfg = by_id[NODE + "_" + key]
        dc, sc, unit = EXPECTED[(key, code)]
        assert cfg["device_class"] == dc
        assert cfg["state_class"] == sc
        assert cfg["unit_of_measurement"] == unit
        assert cfg["suggested_display_precision"] == (-exponent if exponent < 0 else 0)
        assert cfg["name"] == label
        assert cfg["value_template"] == "{{ value_json['%s'] }}" % key


def test_discovery_config_fields():
    msgs = discovery([sensor("heat_energy", 8)], origin_url="https://example.invalid/kmp2mqtt")
    topic, cfg = msgs[0]
    assert topic == "homeassistant/sensor/kamstrup_67051653_heat_energy/config"
    assert "object_id" not in cfg
    assert cfg == {
        "name": "Heat energy",
        "unique_id": "kamstrup_67051653_heat_energy",
        "default_entity_id": "sensor.kamstrup_67051653_heat_energy",
        "state_topic": "kmp2mqtt/kamstrup_67051653/state",
        "value_template": "{{ value_json['heat_energy'] }}",
        "availability_topic": "kmp2mqtt/kamstrup_67051653/status",
        "expire_after": 180,
        "device": {
            "identifiers": ["kamstrup_67051653"],
            "name": "Kamstrup 67051653",
            "manufacturer": "Kamstrup",
            "model": "MULTICAL 403",
            "serial_number": "67051653",
            "sw_version": "F1",
        },
        "origin": {
            "name": "kmp2mqtt",
            "sw_version": "0.1.0",
            "support_url": "https://example.invalid/kmp2mqtt",
        },
        "device_class": "energy",
        "state_class": "total_increasing",
        "unit_of_measurement": "GJ",
        "suggested_display_precision": 3,
    }


def test_discovery_payload_is_compact_json():
    for _, raw in disco.discovery_messages(NODE, BASE, PREFIX, DEVICE, esphome_sensors(), 60, FW):
        assert raw.startswith("{") and ", " not in raw and '": ' not in raw
        json.loads(raw)


def test_discovery_expire_after_and_device_defaults():
    msgs = discovery(
        [sensor("power", 22)],
        update_interval=900,
        diagnostics=False,
        device={"model": None, "serial": None},
    )
    cfg = msgs[0][1]
    assert cfg["expire_after"] == 2700 and type(cfg["expire_after"]) is int
    assert cfg["device"] == {"identifiers": [NODE], "name": NODE, "manufacturer": "Kamstrup"}
    assert "support_url" not in cfg["origin"]
    named = discovery(
        [sensor("power", 22)], device={"name": "Heat meter"}, update_interval=0, diagnostics=False
    )[0][1]
    assert named["device"]["name"] == "Heat meter"
    assert "expire_after" not in named  # no interval known: never expire


def test_discovery_skips_sensors_whose_unit_is_not_known_yet():
    msgs = discovery([sensor("heat_energy", None), sensor("power", 22)], diagnostics=False)
    assert [cfg["unique_id"] for _, cfg in msgs] == [NODE + "_power"]


def test_discovery_unknown_unit_and_custom_ids():
    sensors = [
        ("e8", "m³·T1 (E8)", 0x61, registers.TOTAL, 43, 0),
        ("info-code", "Info code", 0x63, registers.INFO, 0, 0),
        ("Reg 0x1234", "Custom", 0x1234, registers.MEASURE, 200, -1),
    ]
    msgs = discovery(sensors, diagnostics=False, node_id="Kamstrup-403")
    (t1, e8), (t2, info), (t3, custom) = msgs
    assert t1 == "homeassistant/sensor/Kamstrup-403_e8/config"  # the unique_id, unchanged
    assert e8["unique_id"] == "Kamstrup-403_e8"
    assert e8["default_entity_id"] == "sensor.kamstrup_403_e8"  # entity ids are lower case
    assert "device_class" not in e8 and e8["unit_of_measurement"] == "m³×°C"
    assert e8["state_class"] == "total_increasing"
    assert info["value_template"] == "{{ value_json['info-code'] }}"
    assert "state_class" not in info and "unit_of_measurement" not in info
    assert t3 == "homeassistant/sensor/Kamstrup-403_Reg_0x1234/config"  # (not config's charset)
    assert custom["value_template"] == "{{ value_json['Reg 0x1234'] }}"
    assert custom["state_class"] == "measurement" and "unit_of_measurement" not in custom
    for topic, cfg in msgs:
        ha_rules.check_discovery(cfg, ha_rules.component_of(topic))


def test_discovery_for_an_older_home_assistant():
    pair = [sensor("temp_diff", 38), sensor("flow", 41)]
    msgs = discovery(pair, ha_version=202504, diagnostics=False)
    for _, cfg in msgs:
        assert "device_class" not in cfg
        assert cfg["state_class"] == "measurement"
    assert [cfg["unit_of_measurement"] for _, cfg in msgs] == ["K", "L/h"]
    for version in (202504, 202505, 202510, 202511, None):
        for topic, cfg in discovery(esphome_sensors(), ha_version=version):
            ha_rules.check_discovery(cfg, ha_rules.component_of(topic), None, version)
    between = discovery(pair, ha_version=202508, diagnostics=False)
    assert [cfg.get("device_class") for _, cfg in between] == [None, "volume_flow_rate"]
    current = discovery(pair, diagnostics=False)
    assert [cfg.get("device_class") for _, cfg in current] == ["temperature_delta",
                                                               "volume_flow_rate"]  # fmt: skip


def test_node_ids_differing_in_case_or_dash_get_their_own_topics():
    # DISCOVERY.md 2.1: object_id charset [a-zA-Z0-9_-]; the topic is the unique_id itself
    seen = {}
    for node_id in ("Meter-1", "meter_1", "METER_1", "meter-1"):
        for topic, cfg in discovery([sensor("heat_energy", 8)], node_id=node_id):
            assert topic == "homeassistant/%s/%s/config" % (topic.split("/")[1], cfg["unique_id"])
            assert ha_rules.component_of(topic)
            assert topic not in seen, (topic, node_id, seen.get(topic))
            seen[topic] = node_id
    assert len(seen) == 4 * 8
    assert disco.discovery_topic(PREFIX, "sensor", "Meter-1", "flow") == (
        "homeassistant/sensor/Meter-1_flow/config"
    )


def test_topics_of_every_entity_and_where_earlier_firmware_put_them():
    ids = ["heat_energy", "flow"]
    assert list(disco.topics(PREFIX, "Meter-1", ids, False)) == [
        "homeassistant/sensor/Meter-1_heat_energy/config",
        "homeassistant/sensor/Meter-1_flow/config",
    ]
    every = list(disco.topics(PREFIX, NODE, ids))
    assert every == [t for t, _ in discovery([sensor(k, 8 if k == "heat_energy" else 41)
                                              for k in ids])]  # fmt: skip
    old = list(disco.topics(PREFIX, "Meter-1", ids, True, True))
    assert old[0] == "homeassistant/sensor/meter_1_heat_energy/config"
    assert old[-1] == "homeassistant/sensor/meter_1_meter_exchanges/config"
    assert len(old) == 2 + len(disco.DIAGNOSTICS)


def test_discovery_diagnostic_entities():
    msgs = discovery([], update_interval=30)
    assert len(msgs) == len(disco.DIAGNOSTICS) == 7
    by_id = {}
    for topic, cfg in msgs:
        component = ha_rules.component_of(topic)
        ha_rules.check_discovery(cfg, component)
        assert cfg["entity_category"] == "diagnostic"
        assert cfg["state_topic"] == "kmp2mqtt/kamstrup_67051653/diag"
        assert cfg["availability_topic"] == "kmp2mqtt/kamstrup_67051653/status"
        assert cfg["expire_after"] == 90
        assert cfg["default_entity_id"] == "%s.%s" % (component, cfg["unique_id"])
        by_id[cfg["unique_id"][len(NODE) + 1 :]] = (topic, cfg)
    assert by_id["rssi"][1]["device_class"] == "signal_strength"
    assert by_id["rssi"][1]["unit_of_measurement"] == "dBm"
    assert by_id["uptime"][1]["device_class"] == "duration"
    assert by_id["uptime"][1]["unit_of_measurement"] == "s"
    assert by_id["free_heap"][1]["device_class"] == "data_size"
    assert by_id["free_heap"][1]["unit_of_measurement"] == "B"
    assert by_id["link_errors"][1]["state_class"] == "total_increasing"
    topic, problem = by_id["meter_problem"]
    assert topic == "homeassistant/binary_sensor/kamstrup_67051653_meter_problem/config"
    assert problem["device_class"] == "problem"
    assert problem["default_entity_id"] == "binary_sensor.kamstrup_67051653_meter_problem"
    assert discovery([], diagnostics=False) == []


def test_diagnostic_templates_render_like_home_assistant():
    # HA renders value_template with Jinja2 and value_json = the parsed payload.
    jinja2 = pytest.importorskip("jinja2", reason="jinja2 not installed (HA template check)")
    env = jinja2.Environment()

    def render(template, diag):
        return env.from_string(template).render(value_json=json.loads(payloads.diag_payload(diag)))

    tpl = {entry[0]: entry[3] for entry in disco.DIAGNOSTICS}
    assert render(tpl["rssi"], DIAG) == "-67"
    assert render(tpl["uptime"], DIAG) == "3600"
    assert render(tpl["free_heap"], DIAG) == "81234"
    assert render(tpl["link_errors"], DIAG) == "3"
    assert render(tpl["last_error"], DIAG) == "meter: no answer"
    assert render(tpl["last_error"], dict(DIAG, last_error=None)) == "none"
    assert len(render(tpl["last_error"], dict(DIAG, last_error="x" * 400))) == 255
    # binary_sensor: ON = problem; "None" = unknown (binary_sensor.mqtt: payload_on/off/None).
    assert render(tpl["meter_problem"], DIAG) == "ON"
    assert render(tpl["meter_problem"], dict(DIAG, meter_reachable=True)) == "OFF"
    assert render(tpl["meter_problem"], dict(DIAG, meter_reachable=None)) == "None"
    missing = {k: v for k, v in DIAG.items() if k != "meter_reachable"}
    assert render(tpl["meter_problem"], missing) == "None"
    # Host runs publish rssi/free_heap as null: "None" makes the sensor unknown, not 0.
    assert render(tpl["rssi"], dict(DIAG, rssi=None)) == "None"
    # The sensors' templates: null -> "None" (unknown), numbers as HA parses them.
    state = json.loads(payloads.state_payload({"heat_energy": "12.345", "power": None}))
    pair = [sensor("heat_energy", 8), sensor("power", 22)]
    tpl = {c["name"]: c["value_template"] for _, c in discovery(pair, diagnostics=False)}
    assert env.from_string(tpl["Heat energy"]).render(value_json=state) == "12.345"
    assert env.from_string(tpl["Power"]).render(value_json=state) == "None"
    assert (
        env.from_string('{{ value_json["info-code"] }}').render(value_json={"info-code": 0}) == "0"
    )


# ids a config may give a custom register that are also names of dict methods
DICT_METHOD_IDS = ("values", "items", "keys", "get", "update", "copy", "pop", "clear", "setdefault")


def test_sensor_templates_render_the_key_even_for_dict_method_names():
    # HA renders value_template in a sandboxed Jinja2 environment with value_json = the parsed
    # state; value_json.values would be the dict's method, not the reading.
    sandbox = pytest.importorskip("jinja2.sandbox", reason="jinja2 not installed")
    env = sandbox.ImmutableSandboxedEnvironment()
    ids = DICT_METHOD_IDS + ("heat_energy", "e8", "info-code", "Reg 0x1234", "it's")
    sensors = [(sid, sid, 0x1234, registers.MEASURE, 22, 0) for sid in ids]
    values = {sid: str(i + 1) for i, sid in enumerate(ids)}
    state = json.loads(payloads.state_payload(values))
    for _, cfg in discovery(sensors, diagnostics=False):
        sid = cfg["name"]
        assert "value_json." not in cfg["value_template"], cfg["value_template"]
        assert env.from_string(cfg["value_template"]).render(value_json=state) == values[sid], sid


def test_discovery_removals():
    removed = list(disco.discovery_removals(PREFIX, NODE, ["volume", "temp3"]))
    assert removed == [
        ("homeassistant/sensor/kamstrup_67051653_volume/config", ""),
        ("homeassistant/sensor/kamstrup_67051653_temp3/config", ""),
    ]
    everything = list(disco.discovery_removals(PREFIX, NODE, registers.SENSOR_KEYS, True))
    announced = [
        t
        for t, _ in disco.discovery_messages(NODE, BASE, PREFIX, DEVICE, esphome_sensors(), 60, FW)
    ]
    assert [t for t, _ in everything] == announced
    assert all(p == "" for _, p in everything)


# -- ha_rules itself (the oracle must reject what HA rejects) ----------------------------------


def _cfg(**kw):
    cfg = {
        "name": "E1",
        "unique_id": "n_e1",
        "state_topic": "b/n/state",
        "value_template": "{{ value_json.e1 }}",
        "device": {"identifiers": ["n"]},
    }
    cfg.update(kw)
    return cfg


@pytest.mark.parametrize(
    "kw,kind,reason",
    [
        (
            dict(device_class="volume", unit_of_measurement="m3", state_class="total_increasing"),
            "total",
            "m3",
        ),
        (
            dict(
                device_class="volume_flow_rate",
                unit_of_measurement="l/h",
                state_class="measurement",
            ),
            "measure",
            "l/h",
        ),
        (dict(device_class="temperature", unit_of_measurement="C"), None, "'C'"),
        (dict(unit_of_measurement="m3"), None, "m3"),
        (dict(device_class="heat", unit_of_measurement="GJ"), None, "unknown sensor device_class"),
        (dict(device_class="energy", unit_of_measurement="kCal"), None, "kCal"),
        (
            dict(device_class="energy", unit_of_measurement="GJ", state_class="measurement"),
            None,
            "not allowed",
        ),
        (
            dict(device_class="power", unit_of_measurement="kW", state_class="total_increasing"),
            None,
            "not allowed",
        ),
        (dict(state_class="total_increasing"), "measure", "total_increasing on a measure"),
        (dict(state_class="measurement"), "total", "no long-term statistics"),
        (dict(state_class="rising"), None, "unknown state_class"),
        (dict(object_id="n_e1"), None, "object_id"),
        (dict(unique_id=None), None, "missing unique_id"),
        (dict(state_topic=""), None, "missing state_topic"),
        (dict(device=None), None, "missing device"),
        (dict(device={"name": "x"}), None, "identifiers"),
        (dict(default_entity_id="n_e1"), None, "default_entity_id"),
        (dict(default_entity_id="sensor.N-E1"), None, "default_entity_id"),
        (dict(expire_after=180.0), None, "expire_after"),
        (dict(suggested_display_precision=-1), None, "suggested_display_precision"),
        (dict(unit_of_measure="GJ"), None, "unknown option"),
        (dict(device_class="timestamp", unit_of_measurement="s"), None, "not accepted"),
        (dict(entity_category="diag"), None, "entity_category"),
        (dict(origin={"sw": "1"}), None, "origin needs a name"),
    ],
)
def test_ha_rules_rejects(kw, kind, reason):
    with pytest.raises(AssertionError, match=reason.replace("(", r"\(")):
        ha_rules.check_discovery(_cfg(**kw), "sensor", kind)


def test_heat_energy_in_the_energy_dashboards_gas_source():
    # What a user does with district heating: heat energy as a gas source. Every energy unit a
    # MULTICAL reports goes in on a current HA; HA 2025.4 takes GJ, kWh, MJ, MWh and Wh only.
    refused = []
    for code in REALISTIC_UNITS["heat_energy"]:
        dc, sc, unit = ha.classes(registers.TOTAL, 0x3C, code)
        cfg = _cfg(device_class=dc, state_class=sc, unit_of_measurement=unit)
        assert ha_rules.gas_source_problems(cfg) == [], unit
        if ha_rules.gas_source_problems(cfg, 202504):
            refused.append(unit)
    assert sorted(refused) == ["Gcal", "kcal"]


def test_ha_rules_know_older_versions_and_jinja_attribute_lookup():
    dt = _cfg(device_class="temperature_delta", unit_of_measurement="K", state_class="measurement")
    lh = _cfg(device_class="volume_flow_rate", unit_of_measurement="L/h",
              state_class="measurement")  # fmt: skip
    m3h = dict(lh, unit_of_measurement="m³/h")
    for version in (None, 202511):
        for cfg in (dt, lh, m3h):
            ha_rules.check_discovery(cfg, "sensor", "measure", version)
    with pytest.raises(AssertionError, match="HA 2025.10 rejects device_class temperature_delta"):
        ha_rules.check_discovery(dt, "sensor", "measure", 202510)
    ha_rules.check_discovery(lh, "sensor", "measure", 202505)
    # (created, but with a warning at every start that it stops working in 2025.7)
    with pytest.raises(AssertionError, match="HA 2025.4 warns about device_class volume_flow"):
        ha_rules.check_discovery(lh, "sensor", "measure", 202504)
    ha_rules.check_discovery(m3h, "sensor", "measure", 202001)
    for name in ("values", "items", "get"):
        with pytest.raises(AssertionError, match="value_json.%s renders the dict's method" % name):
            ha_rules.check_discovery(_cfg(value_template="{{ value_json.%s }}" % name))
    ha_rules.check_discovery(_cfg(value_template="{{ value_json['values'] }}"))
    ha_rules.check_discovery(_cfg(value_template="{{ value_json.value }}"))


def test_ha_rules_accepts_and_expands_abbreviations():
    ha_rules.check_discovery(
        _cfg(device_class="volume", unit_of_measurement="m³", state_class="total_increasing"),
        "sensor",
        "total",
    )
    ha_rules.check_discovery(
        _cfg(device_class="volume_flow_rate", unit_of_measurement="L/h", state_class="measurement"),
        "sensor",
        "measure",
    )
    abbreviated = {
        "name": "E1",
        "uniq_id": "n_e1",
        "stat_t": "b/n/state",
        "dev_cla": "energy",
        "unit_of_meas": "GJ",
        "stat_cla": "total_increasing",
        "sug_dsp_prc": 3,
        "exp_aft": 180,
        "dev": {"ids": ["n"], "mf": "Kamstrup", "sn": "1"},
        "o": {"name": "kmp2mqtt", "sw": "0.1.0"},
    }
    ha_rules.check_discovery(abbreviated, "sensor", "total")
    with pytest.raises(AssertionError, match="unit 'm3'"):
        ha_rules.check_discovery(dict(abbreviated, unit_of_meas="m3", dev_cla="volume"))
    with pytest.raises(AssertionError, match="binary_sensor device_class"):
        ha_rules.check_discovery(_cfg(device_class="energy"), "binary_sensor")
    with pytest.raises(AssertionError, match="not under the discovery prefix"):
        ha_rules.component_of("kmp2mqtt/sensor/x/config")
    with pytest.raises(AssertionError, match="object_id"):
        ha_rules.component_of("homeassistant/sensor/a.b/config")
    with pytest.raises(AssertionError, match="<object_id>/config"):
        ha_rules.component_of("homeassistant/sensor/node/obj/config")


# -- the MicroPython suite's expectations hold on CPython too ----------------------------------


def test_micropython_suite_also_passes_on_cpython(capsys):
    # host_tests/mpy/test_payloads.py runs under MicroPython 1.29 in `make test`; running the
    # same file here proves both interpreters meet the same literal expectations.
    runpy.run_path(str(ROOT / "host_tests" / "mpy" / "test_payloads.py"), run_name="mpy_payloads")
    out = capsys.readouterr().out
    assert "payloads: " in out and " 0 failed" in out, out
