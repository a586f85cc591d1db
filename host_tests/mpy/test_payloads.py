# lib/payloads.py and lib/ha.py under real MicroPython 1.29: the same JSON as on CPython
# (host_tests/test_payloads.py also runs this file under CPython). Dict order differs between
# the two, so payloads are compared parsed, and the exact number texts as substrings.

import gc
import json

import discovery
import ha
import payloads
from kmp import registers
from mptest import assert_raises, run

NODE = "kamstrup_67051653"
BASE = "kmp2mqtt"
PREFIX = "homeassistant"
DEVICE = {"model": "MULTICAL 403", "serial": 67051653, "sw_version": "F1"}

# (id, name, rid, kind, unit_code, exponent): the seven ESPHome sensors of a MULTICAL 403.
SENSORS = [
    ("heat_energy", "Heat energy (E1)", 0x3C, registers.TOTAL, 8, -3),
    ("power", "Power", 0x50, registers.MEASURE, 22, -1),
    ("temp1", "Flow temperature (T1)", 0x56, registers.MEASURE, 37, -2),
    ("temp2", "Return temperature (T2)", 0x57, registers.MEASURE, 37, -2),
    ("temp_diff", "Temperature difference (T1-T2)", 0x59, registers.MEASURE, 38, -2),
    ("flow", "Flow (V1)", 0x4A, registers.MEASURE, 41, 0),
    ("volume", "Volume (V1)", 0x44, registers.TOTAL, 40, -2),
]
CLASSES = {
    "heat_energy": ("energy", "total_increasing", "GJ", 3),
    "power": ("power", "measurement", "kW", 1),
    "temp1": ("temperature", "measurement", "°C", 2),
    "temp2": ("temperature", "measurement", "°C", 2),
    "temp_diff": ("temperature_delta", "measurement", "K", 2),
    "flow": ("volume_flow_rate", "measurement", "L/h", 0),
    "volume": ("volume", "total_increasing", "m³", 2),
}
VALUES = {
    "heat_energy": "1234.567",
    "power": None,
    "temp1": "200.00",
    "temp2": "0.05",
    "temp_diff": "-1.5",
    "flow": "255000",
    "volume": "3591.16",
}
DEVICE_JSON = {
    "identifiers": [NODE],
    "name": "Kamstrup 67051653",
    "manufacturer": "Kamstrup",
    "model": "MULTICAL 403",
    "serial_number": "67051653",
    "sw_version": "F1",
}


def _discovery(sensors, diagnostics=True, ha_version=None, node_id=NODE):
    out = []
    for topic, raw in discovery.discovery_messages(
        node_id, BASE, PREFIX, DEVICE, sensors, 60, "0.1.0", None, diagnostics, ha_version
    ):
        out.append((topic, raw, json.loads(raw)))
    return out


def test_state_keeps_the_meters_digits():
    topic, raw = payloads.state_message(BASE, NODE, VALUES, "2026-11-23T12:00:00Z")
    assert topic == "kmp2mqtt/kamstrup_67051653/state"
    for piece in (
        '"heat_energy":1234.567',
        '"power":null',
        '"temp1":200.00',
        '"temp2":0.05',
        '"temp_diff":-1.5',
        '"flow":255000',
        '"volume":3591.16',
        '"time":"2026-11-23T12:00:00Z"',
    ):
        assert piece in raw, (piece, raw)
    obj = json.loads(raw)
    assert len(obj) == 8 and obj["power"] is None and obj["flow"] == 255000
    assert payloads.state_payload({"heat_energy": "12.345"}) == '{"heat_energy":12.345}'


def test_state_without_a_clock_is_marked_like_history():
    raw = payloads.state_payload({"heat_energy": "12.345"}, None, 120)
    assert raw == '{"heat_energy":12.345,"clock":"unknown","uptime_s":120}'
    assert payloads.state_payload({"heat_energy": "1"}, "2026-11-23T12:00:00Z", 120) == (
        '{"heat_energy":1,"time":"2026-11-23T12:00:00Z"}')  # fmt: skip
    assert json.loads(payloads.state_payload({}, None, 7)) == {"clock": "unknown", "uptime_s": 7}


def test_state_rejects_non_decimal_text():
    for bad in ("1e5", "nan", "01", ".5", "5.", "", "+1", 1.5, True):
        assert_raises(ValueError, payloads.state_payload, {"x": bad})
    assert payloads.state_payload({"n": 7}) == '{"n":7}'


def test_history_time_or_marked_unknown():
    topic, raw = payloads.history_message(BASE, NODE, {"volume": "1.00"}, "2026-11-23T11:00:00Z")
    assert topic == "kmp2mqtt/kamstrup_67051653/history"
    assert json.loads(raw) == {"volume": 1.0, "time": "2026-11-23T11:00:00Z"}
    assert '"volume":1.00' in raw
    raw = payloads.history_payload({"volume": "1.00"}, None, 3, 60)
    assert json.loads(raw) == {"volume": 1.0, "time": None, "clock": "unknown", "uptime_s": 60,
                               "seq": 3}  # fmt: skip


def test_status_and_diag():
    assert payloads.status_message(BASE, NODE) == ("kmp2mqtt/kamstrup_67051653/status", "online")
    assert payloads.last_will(BASE, NODE)[1] == "offline"
    d = {
        "rssi": -67,
        "uptime_s": 12,
        "meter_reachable": False,
        "last_error": None,
        "link": {"timeouts": 2, "crc_errors": 1, "frame_errors": 0},
        "unsupported": [99],
    }
    topic, raw = payloads.diag_message(BASE, NODE, d)
    assert topic == "kmp2mqtt/kamstrup_67051653/diag"
    assert json.loads(raw) == d
    assert '"meter_reachable":false' in raw


def test_units_payload():
    topic, raw = discovery.units_message(BASE, NODE, SENSORS + [("x", "X", 0x3D, 0, None, None)])
    assert topic == "kmp2mqtt/kamstrup_67051653/units"
    obj = json.loads(raw)
    assert obj["heat_energy"] == {
        "name": "Heat energy (E1)",
        "unit": "GJ",
        "kmp_unit": "GJ",
        "unit_code": 8,
        "rid": 60,
        "exponent": -3,
    }
    assert obj["flow"]["unit"] == "L/h" and obj["flow"]["kmp_unit"] == "l/h"
    assert obj["volume"]["unit"] == "m³"
    assert obj["temp1"]["unit"] == "°C"
    assert obj["x"]["unit"] is None and obj["x"]["unit_code"] is None


def test_ha_classes():
    for sid, _, rid, kind, code, exponent in SENSORS:
        dc, sc, unit, prec = CLASSES[sid]
        assert ha.classes(kind, rid, code) == (dc, sc, unit), sid
        assert ha.precision(exponent) == prec
    assert ha.unit(10) == "kcal" and ha.unit(42) == "m³/h" and ha.unit(39) == "L"
    assert ha.unit(47) is None and ha.unit(200) is None and ha.unit(None) is None
    assert ha.classes(registers.MEASURE, 0x1234, 8) == (None, "measurement", "GJ")
    assert ha.classes(registers.MEASURE, 0x59, 38, 202510) == (None, "measurement", "K")
    assert ha.classes(registers.MEASURE, 0x59, 38, 202511)[0] == "temperature_delta"
    assert ha.classes(registers.MEASURE, 0x4A, 41, 202504) == (None, "measurement", "L/h")
    assert ha.classes(registers.MEASURE, 0x4A, 41, 202505)[0] == "volume_flow_rate"
    assert ha.classes(registers.MEASURE, 0x1234, 35) == ("voltage", "measurement", "kV")


def test_discovery_heat_energy_config():
    topic, raw, cfg = _discovery(SENSORS[:1], False)[0]
    assert topic == "homeassistant/sensor/kamstrup_67051653_heat_energy/config"
    assert cfg == {
        "name": "Heat energy (E1)",
        "unique_id": "kamstrup_67051653_heat_energy",
        "default_entity_id": "sensor.kamstrup_67051653_heat_energy",
        "state_topic": "kmp2mqtt/kamstrup_67051653/state",
        "value_template": "{{ value_json['heat_energy'] }}",
        "availability_topic": "kmp2mqtt/kamstrup_67051653/status",
        "expire_after": 180,
        "device": DEVICE_JSON,
        "origin": {"name": "kmp2mqtt", "sw_version": "0.1.0"},
        "device_class": "energy",
        "state_class": "total_increasing",
        "unit_of_measurement": "GJ",
        "suggested_display_precision": 3,
    }
    assert '"expire_after":180' in raw and '"suggested_display_precision":3' in raw


def test_discovery_all_sensors_and_diagnostics():
    msgs = _discovery(SENSORS)
    assert len(msgs) == 7 + len(discovery.DIAGNOSTICS)
    for topic, _, cfg in msgs[:7]:
        sid = cfg["unique_id"][len(NODE) + 1 :]
        dc, sc, unit, prec = CLASSES[sid]
        assert topic == "homeassistant/sensor/%s_%s/config" % (NODE, sid)
        assert (cfg["device_class"], cfg["state_class"]) == (dc, sc)
        assert cfg["unit_of_measurement"] == unit
        assert cfg["suggested_display_precision"] == prec
        assert "object_id" not in cfg
    components = [t.split("/")[1] for t, _, _ in msgs[7:]]
    assert components == ["sensor"] * 5 + ["binary_sensor", "sensor"]
    for _, _, cfg in msgs[7:]:
        assert cfg["entity_category"] == "diagnostic"
        assert cfg["state_topic"] == "kmp2mqtt/kamstrup_67051653/diag"
    assert msgs[-2][2]["device_class"] == "problem"
    assert msgs[-1][2]["json_attributes_topic"] == "kmp2mqtt/kamstrup_67051653/diag"


def test_discovery_for_an_older_home_assistant_and_removals():
    for _, _, cfg in _discovery(SENSORS[4:6], False, 202504):
        assert "device_class" not in cfg
    classes = [cfg.get("device_class") for _, _, cfg in _discovery(SENSORS[4:6], False, 202505)]
    assert classes == [None, "volume_flow_rate"]
    removed = list(discovery.discovery_removals(PREFIX, NODE, ["volume"], True))
    assert removed[0] == ("homeassistant/sensor/kamstrup_67051653_volume/config", "")
    assert removed[-1] == (
        "homeassistant/sensor/kamstrup_67051653_meter_exchanges/config",
        "",
    )
    assert len(removed) == 1 + len(discovery.DIAGNOSTICS)


def test_topic_is_the_unique_id_and_templates_use_brackets():
    seen = set()
    for node_id in ("Meter-1", "meter_1", "METER_1"):
        for topic, _, cfg in _discovery(SENSORS[:1], False, None, node_id):
            assert topic == "homeassistant/sensor/%s/config" % cfg["unique_id"]
            assert cfg["default_entity_id"] == "sensor." + cfg["unique_id"].lower().replace(
                "-", "_"
            )
            seen.add(topic)
    assert len(seen) == 3
    sensors = [(sid, sid, 0x1234, registers.MEASURE, 22, 0) for sid in ("values", "items", "get")]
    for _, _, cfg in _discovery(sensors, False):
        assert cfg["value_template"] == "{{ value_json['%s'] }}" % cfg["name"]
    old = list(discovery.topics(PREFIX, "Meter-1", ["flow"], False, True))
    assert old == ["homeassistant/sensor/meter_1_flow/config"]


def test_discovery_leaves_the_resident_key_cache_alone():
    # exactjson stays in RAM with the state and diag; its key cache must not collect the keys
    # of discovery and units, which go out once in a while (a re-announce would keep them).
    import exactjson

    exactjson._QUOTED.clear()  # (earlier tests filled it)
    payloads.diag_payload({"rssi": -60})
    cached = len(exactjson._QUOTED)
    for _, raw in discovery.discovery_messages(NODE, BASE, PREFIX, DEVICE, SENSORS, 60, "0.1.0"):
        assert raw[:2] == '{"' and ", " not in raw and '": ' not in raw  # compact
    discovery.units_payload(SENSORS)
    assert len(exactjson._QUOTED) == cached


def test_allocation_is_modest():
    # The state payload is built every cycle; discovery once per boot or units change.
    if not hasattr(gc, "mem_alloc"):  # CPython
        return
    gc.collect()
    before = gc.mem_alloc()
    payloads.state_payload(VALUES, "2026-11-23T12:00:00Z")
    state_bytes = gc.mem_alloc() - before
    gc.collect()
    before = gc.mem_alloc()
    biggest = count = 0
    for _, raw in discovery.discovery_messages(NODE, BASE, PREFIX, DEVICE, SENSORS, 60, "0.1.0"):
        biggest = max(biggest, len(raw))
        count += 1
    discovery_bytes = gc.mem_alloc() - before
    print(
        "alloc: state %d B, all discovery %d B, biggest config %d B"
        % (state_bytes, discovery_bytes, biggest)
    )
    assert state_bytes < 3000, state_bytes
    assert biggest < 1024, biggest
    assert discovery_bytes // count < 8000, discovery_bytes  # garbage per config, freed by gc


run(globals(), "payloads")
