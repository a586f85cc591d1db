# config.py under real MicroPython 1.29: the validator's key cases (host_tests/test_config.py has
# the full matrix under CPython). MicroPython differs in ways that matter here: unordered dicts,
# ASCII-only str.lower(), bool vs int, JSON error texts, OSError texts.

import json
import os

import config
from config import DEFAULTS, ConfigError, load, slug, validate
from mptest import assert_raises, run

MIN = {"wifi": {"ssid": "home"}, "mqtt": {"host": "broker.lan"}}
TMP = "/tmp/kmp2mqtt_test_config.json"


def copy(v):
    return json.loads(json.dumps(v))


def errors(raw, target="esp32"):
    return assert_raises(ConfigError, validate, raw, target).errors


def edit(section, key, value):
    raw = copy(MIN)
    raw.setdefault(section, {})[key] = value
    return raw


def write(text):
    with open(TMP, "w") as f:
        f.write(text)
    return TMP


def test_shipped_config_is_the_defaults_and_needs_filling():
    with open("config.json") as f:
        assert json.load(f) == DEFAULTS
    e = assert_raises(ConfigError, load, "config.json")
    assert [p for p, _ in e.errors] == ["wifi.ssid", "mqtt.host"]
    assert (
        str(e).split("\n")[0] == "wifi.ssid: required on the ESP32: the name of your Wi-Fi network"
    )


def test_minimal_config_gets_every_default():
    cfg = validate(MIN)
    assert sorted(cfg) == sorted(
        [
            "node_id",
            "wifi",
            "mqtt",
            "meter",
            "update_interval",
            "align",
            "sensors",
            "custom",
            "battery",
            "buffer",
            "registers",
        ]
    )
    assert cfg["battery"]["deep_sleep"] is False and cfg["buffer"]["capacity"] == 672
    assert cfg["mqtt"] == {
        "host": "broker.lan",
        "port": 1883,
        "user": "",
        "password": "",
        "tls": False,
        "ca_file": "",
        "base_topic": "kmp2mqtt",
        "discovery": True,
        "discovery_prefix": "homeassistant",
        "ha_version": None,
    }
    assert cfg["meter"] == {
        "uart": 1,
        "rx_pin": 13,
        "tx_pin": 15,
        "address": 63,
        "timeout_ms": 1600,
        "retries": 2,
        "port": "",
        "model": "",
        "read_budget": 24,
    }
    assert cfg["update_interval"] == 60 and cfg["align"] is False and cfg["node_id"] == ""
    assert cfg["registers"] == [
        ("heat_energy", 0x3C, "Heat Energy"),
        ("power", 0x50, "Heat Power"),
        ("temp_diff", 0x59, "Heat Temperature Difference"),
        ("flow", 0x4A, "Heat Flow"),
    ]


def test_registers_follow_esphome_order_not_dict_order():
    raw = copy(MIN)
    raw["sensors"] = {"volume": {}, "temp2": {"name": "Return"}, "temp1": {}, "heat_energy": {}}
    raw["custom"] = [
        {"name": "Custom Heat Energy", "command": "0x003C"},
        {"name": "B", "command": 7},
    ]
    assert validate(raw)["registers"] == [
        ("heat_energy", 0x3C, "Heat Energy"),
        ("temp1", 0x56, "Heat Flow Temperature"),
        ("temp2", 0x57, "Return"),
        ("volume", 0x44, "Heat Volume"),
        ("custom_heat_energy", 0x3C, "Custom Heat Energy"),
        ("b", 7, "B"),
    ]


def test_bool_is_not_an_int():
    assert errors(edit("mqtt", "port", True)) == [
        ("mqtt.port", "expected an integer 1..65535, got true")
    ]
    assert errors(edit("meter", "uart", True))[0][0] == "meter.uart"
    assert errors(edit("meter", "retries", False))[0][0] == "meter.retries"
    raw = copy(MIN)
    raw["custom"] = [{"name": "x", "command": True}]
    assert errors(raw)[0][0] == "custom[0].command"


def test_issue_error_messages():
    raw = copy(MIN)
    raw["mqtt"]["port"] = "1883x"
    raw["sensors"] = {"heat_enrgy": {}, "power": {}}
    raw["custom"] = [{"name": "A", "command": "0x0061"}, {"name": "B", "command": "0x3C0000"}]
    assert errors(raw) == [
        ("mqtt.port", 'expected an integer 1..65535, got "1883x"'),
        (
            "sensors.heat_enrgy",
            "unknown sensor; expected one of heat_energy, power, temp1, "
            "temp2, temp_diff, flow, volume",
        ),
        ("custom[1].command", 'expected 2-byte hex like 0x003C, got "0x3C0000"'),
    ]


def test_pins_and_uart():
    assert errors(edit("meter", "uart", 0)) == [
        ("meter.uart", "UART0 is the REPL console; use 1 or 2")
    ]
    assert errors(edit("meter", "rx_pin", 9)) == [
        ("meter.rx_pin", "GPIO9 is wired to the SPI flash (GPIO6..11); use another pin")
    ]
    assert errors(edit("meter", "tx_pin", 36)) == [
        ("meter.tx_pin", "GPIO36 is input-only (GPIO34..39); TX drives the IR LED")
    ]
    assert errors(edit("meter", "tx_pin", 13)) == [
        ("meter.tx_pin", "must differ from meter.rx_pin (both GPIO13)")
    ]
    assert validate(edit("meter", "rx_pin", 36))["meter"]["rx_pin"] == 36  # driven by the head
    for pin in (34, 35, 36, 39):
        assert errors(edit("battery", "stay_awake_pin", pin)) == [
            ("battery.stay_awake_pin", "GPIO%d is input-only without a pull-up (GPIO34..39); "
             "the pin is read with the internal pull-up: use another pin" % pin)
        ]  # fmt: skip
    assert validate(edit("battery", "stay_awake_pin", 33))["battery"]["stay_awake_pin"] == 33


def test_durations():
    for text, seconds in (
        ("60s", 60),
        ("15min", 900),
        ("1h", 3600),
        ("2h30min", 9000),
        ("1.5h", 5400),
        ("5000ms", 5),
        (300, 300),
        (60.0, 60),
    ):
        raw = copy(MIN)
        raw["update_interval"] = text
        assert validate(raw)["update_interval"] == seconds, text
    raw = copy(MIN)
    raw["update_interval"] = "500ms"
    assert errors(raw) == [
        ("update_interval", 'expected 5 s .. 24 h (5..86400 seconds), got "500ms"')
    ]
    raw["update_interval"] = "60"
    assert errors(raw)[0][1].startswith("expected seconds (a number) or a duration")
    raw["update_interval"] = 60.5
    assert errors(raw) == [("update_interval", "expected whole seconds, got 60.5")]


def test_slugs_without_unicode_lower():
    assert slug("Custom Heat Energy") == "custom_heat_energy"
    assert slug("Wärme ÄÖÜ") == "warme_aou"
    assert slug("E8 (m³·T1)") == "e8_m_t1"
    assert slug("ÆØÅ") == "aeoa"


def test_duplicate_and_reserved_ids():
    raw = copy(MIN)
    raw["custom"] = [
        {"name": "Flow", "command": 1},
        {"name": "X", "command": 2, "id": "x"},
        {"name": "Y", "command": 3, "id": "x"},
        {"name": "Time", "command": 4},
        {"name": "Uptime", "command": "0x03EC"},
        {"name": "S", "command": 5, "id": "seq"},
    ]
    assert errors(raw) == [
        (
            "custom[0].id",
            'duplicate id "flow" (made from the name): already used by '
            "sensors.flow; set another id",
        ),
        ("custom[2].id", 'duplicate id "x": already used by custom[1]; set another id'),
        (
            "custom[3].id",
            'id "time" (made from the name) is reserved (the state and history JSON use it); '
            "set another id",
        ),
        (
            "custom[4].id",
            'id "uptime" (made from the name) is reserved (the node\'s diagnostic entity in '
            "Home Assistant); set another id",
        ),
        (
            "custom[5].id",
            'id "seq" is reserved (the state and history JSON use it); set another id',
        ),
    ]


def test_ha_version():
    for text, version in (("2025.4", 202504), ("2025.11.2", 202511), (None, None)):
        assert validate(edit("mqtt", "ha_version", text))["mqtt"]["ha_version"] == version
    for bad in ("2025", "2025.13", "2025.4b1", "", 2025.4, True):
        e = errors(edit("mqtt", "ha_version", bad))
        assert len(e) == 1 and e[0][0] == "mqtt.ha_version", e
        assert e[0][1].startswith('expected the Home Assistant version as "YYYY.M"'), e


def test_secrets_are_not_echoed():
    raw = copy(MIN)
    raw["wifi"]["password"] = "hunter2" * 20
    raw["mqtt"]["password"] = "hunter2"
    raw["mqtt"]["passwd"] = "hunter2"
    e = assert_raises(ConfigError, validate, raw)
    assert "hunter2" not in str(e)
    assert [p for p, _ in e.errors] == ["wifi.password", "mqtt.passwd", "mqtt.password"]


def test_targets():
    host = {"mqtt": {"host": "b"}, "meter": {"port": "/dev/ttyUSB0"}}
    assert validate(host, "host")["wifi"]["ssid"] == ""
    assert errors({"mqtt": {"host": "b"}}, "host") == [
        ("meter.port", "required on a host: the IR head's serial device, e.g. /dev/ttyUSB0")
    ]
    assert_raises(ValueError, validate, MIN, "esp8266")


def test_load_reports_file_problems():
    e = assert_raises(ConfigError, load, "/tmp/does/not/exist.json")
    assert e.errors[0][0] == "/tmp/does/not/exist.json"
    assert e.errors[0][1].startswith("cannot read the file: ")
    e = assert_raises(ConfigError, load, write('{"mqtt": {"host": "b"'))
    assert e.errors[0][0] == TMP and e.errors[0][1].startswith("invalid JSON: ")
    e = assert_raises(ConfigError, load, write("[1]"))
    assert e.errors == [("", "expected an object {...}, got a list")]
    assert load(write("\ufeff" + json.dumps(MIN)))["wifi"]["ssid"] == "home"
    os.remove(TMP)


def test_junk_only_raises_config_error():
    junk = (
        None,
        True,
        0,
        -1,
        1.5,
        float("nan"),
        "",
        "x",
        [],
        [None],
        {},
        {"": None},
        {"name": 1},
        [{"command": []}],
        "0x",
        10**20,
    )
    paths = (
        ("node_id",),
        ("wifi",),
        ("mqtt", "port"),
        ("meter",),
        ("meter", "rx_pin"),
        ("update_interval",),
        ("sensors",),
        ("sensors", "power"),
        ("custom",),
    )
    n = 0
    for path in paths:
        for value in junk:
            raw = copy(MIN)
            if len(path) == 1:
                raw[path[0]] = value
            else:
                raw.setdefault(path[0], {})[path[1]] = value
            try:
                validate(raw)
            except ConfigError as e:
                assert e.errors and str(e).count("\n") == len(e.errors) - 1
            n += 1
    assert n == len(paths) * len(junk)
    for value in junk:
        try:
            validate(value)
        except ConfigError:
            pass
    assert config.duration_ms("2h 30min") == 9000000


def test_battery_errors():
    raw = dict(MIN)
    raw["battery"] = {"deep_sleep": True, "ip": "10.0.0.5", "wake_deadline_s": 500}
    raw["update_interval"] = 30
    e = assert_raises(ConfigError, validate, raw)
    paths = [p for p, _ in e.errors]
    assert paths == ["battery.wake_deadline_s", "battery.netmask", "update_interval"], paths


run(globals(), "config")
