# config.json: shipped file, defaults, normalization, every error path and message, secrets,
# durations, ids, load() failures, and a property test that junk never crashes the validator.

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import config
from config import DEFAULTS, ConfigError, load, slug, validate

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config.json"

# The smallest valid config on each target.
MIN_ESP32 = {"wifi": {"ssid": "home"}, "mqtt": {"host": "broker.lan"}}
MIN_HOST = {"mqtt": {"host": "broker.lan"}, "meter": {"port": "/dev/ttyUSB0"}}


def with_(base, path, value):
    """A deep copy of base with the dotted path set (a list index as a number in the path)."""
    cfg = copy.deepcopy(base)
    keys = path.split(".")
    node = cfg
    for k in keys[:-1]:
        if isinstance(node, list):
            node = node[int(k)]
        else:
            node = node.setdefault(k, {})
    if isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return cfg


def errors_of(raw, target="esp32"):
    with pytest.raises(ConfigError) as exc:
        validate(raw, target)
    return exc.value.errors


def one_error(raw, target="esp32"):
    errs = errors_of(raw, target)
    assert len(errs) == 1, errs
    return errs[0]


# -- the shipped config.json ---------------------------------------------------------------------


def test_shipped_config_is_the_defaults():
    assert json.loads(SHIPPED.read_text()) == DEFAULTS


def test_shipped_config_refuses_to_run_unfilled_on_the_esp32():
    with pytest.raises(ConfigError) as exc:
        load(str(SHIPPED))
    assert exc.value.errors == [
        ("wifi.ssid", "required on the ESP32: the name of your Wi-Fi network"),
        ("mqtt.host", "required: the MQTT broker's host name or IP address"),
    ]
    assert str(exc.value) == (
        "wifi.ssid: required on the ESP32: the name of your Wi-Fi network\n"
        "mqtt.host: required: the MQTT broker's host name or IP address"
    )


def test_shipped_config_on_a_host_needs_the_serial_port():
    errs = errors_of(json.loads(SHIPPED.read_text()), "host")
    assert [p for p, _ in errs] == ["mqtt.host", "meter.port"]
    assert errs[1][1] == "required on a host: the IR head's serial device, e.g. /dev/ttyUSB0"


def test_shipped_config_loads_once_filled(tmp_path):
    raw = json.loads(SHIPPED.read_text())
    raw["mqtt"]["host"] = "192.168.1.10"
    raw["meter"]["port"] = "/dev/ttyUSB0"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    cfg = load(str(path), target="host")
    assert cfg["meter"]["port"] == "/dev/ttyUSB0" and cfg["wifi"]["ssid"] == ""
    raw["wifi"]["ssid"] = "home"
    path.write_text(json.dumps(raw))
    cfg = load(str(path))  # esp32 by default
    assert cfg["registers"] == [
        ("heat_energy", 0x3C, "Heat Energy"),
        ("power", 0x50, "Heat Power"),
        ("temp_diff", 0x59, "Heat Temperature Difference"),
        ("flow", 0x4A, "Heat Flow"),
    ]


# -- defaults and the normalized shape -----------------------------------------------------------


def test_minimal_config_is_filled_with_every_default():
    assert validate(MIN_ESP32) == {
        "node_id": "",
        "wifi": {"ssid": "home", "password": ""},
        "mqtt": {
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
        },
        "meter": {
            "uart": 1,
            "rx_pin": 13,
            "tx_pin": 15,
            "address": 63,
            "timeout_ms": 1600,
            "retries": 2,
            "port": "",
            "model": "",
            "read_budget": 24,
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
        "registers": [
            ("heat_energy", 0x3C, "Heat Energy"),
            ("power", 0x50, "Heat Power"),
            ("temp_diff", 0x59, "Heat Temperature Difference"),
            ("flow", 0x4A, "Heat Flow"),
        ],
    }


def test_the_issue_example_validates():
    raw = copy.deepcopy(DEFAULTS)
    raw["wifi"] = {"ssid": "home", "password": "correct horse"}
    raw["mqtt"].update(host="10.0.0.2", user="ha", password="s3cret")
    raw["custom"] = [{"name": "Custom Heat Energy", "command": "0x003C"}]
    cfg = validate(raw)
    assert cfg["custom"] == [
        {"name": "Custom Heat Energy", "command": 0x3C, "id": "custom_heat_energy"}
    ]
    assert cfg["registers"][-1] == ("custom_heat_energy", 0x3C, "Custom Heat Energy")


def test_validate_returns_new_objects_and_mutates_nothing():
    raw = copy.deepcopy(MIN_ESP32)
    before = copy.deepcopy(raw)
    defaults_before = copy.deepcopy(DEFAULTS)
    cfg = validate(raw)
    assert raw == before
    cfg["mqtt"]["host"] = "x"
    cfg["sensors"]["power"]["name"] = "x"
    cfg["custom"].append(1)
    cfg["wifi"]["ssid"] = "x"
    assert DEFAULTS == defaults_before
    assert validate(MIN_ESP32)["sensors"]["power"]["name"] == "Heat Power"


def test_tls_defaults_to_port_8883_unless_a_port_is_given():
    assert validate(with_(MIN_ESP32, "mqtt.tls", True))["mqtt"]["port"] == 8883
    cfg = with_(with_(MIN_ESP32, "mqtt.tls", True), "mqtt.port", 8884)
    assert validate(cfg)["mqtt"]["port"] == 8884
    assert validate(MIN_ESP32)["mqtt"]["port"] == 1883


def test_ca_file_with_tls():
    cfg = with_(with_(MIN_ESP32, "mqtt.tls", True), "mqtt.ca_file", "/certs/ca.crt")
    assert validate(cfg)["mqtt"]["ca_file"] == "/certs/ca.crt"
    assert validate(with_(MIN_ESP32, "mqtt.tls", True))["mqtt"]["ca_file"] == ""


def test_sensors_default_names_and_reading_order():
    raw = with_(MIN_ESP32, "sensors", {k: {} for k in reversed(config.registers.SENSOR_KEYS)})
    raw["custom"] = [{"name": "E8", "command": "0x0061"}, {"name": "B", "command": 1, "id": "b"}]
    cfg = validate(raw)
    assert cfg["registers"] == [
        ("heat_energy", 0x3C, "Heat Energy"),
        ("power", 0x50, "Heat Power"),
        ("temp1", 0x56, "Heat Flow Temperature"),
        ("temp2", 0x57, "Heat Return Temperature"),
        ("temp_diff", 0x59, "Heat Temperature Difference"),
        ("flow", 0x4A, "Heat Flow"),
        ("volume", 0x44, "Heat Volume"),
        ("e8", 0x61, "E8"),
        ("b", 1, "B"),
    ]


def test_only_listed_sensors_are_read():
    cfg = validate(with_(MIN_ESP32, "sensors", {"volume": {"name": "  Water  "}}))
    assert cfg["sensors"] == {"volume": {"name": "Water"}}
    assert cfg["registers"] == [("volume", 0x44, "Water")]


def test_custom_only_is_fine():
    cfg = validate(
        dict(MIN_ESP32, sensors={}, custom=[{"name": "Info", "command": 99, "id": "info"}])
    )
    assert cfg["registers"] == [("info", 99, "Info")]


def test_targets():
    assert validate(MIN_HOST, target="host")["meter"]["port"] == "/dev/ttyUSB0"
    assert validate(MIN_ESP32, target="esp32")["meter"]["port"] == ""
    with pytest.raises(ValueError):
        validate(MIN_ESP32, target="esp8266")


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("node_id", "kamstrup-403_a", "kamstrup-403_a"),
        ("node_id", "x" * 64, "x" * 64),
        ("mqtt.host", "fd00::1", "fd00::1"),
        ("mqtt.host", "mqtt_broker.home.arpa", "mqtt_broker.home.arpa"),
        ("mqtt.port", 65535, 65535),
        ("mqtt.base_topic", "home/heat", "home/heat"),
        ("mqtt.user", "ha", "ha"),
        ("meter.uart", 2, 2),
        ("meter.rx_pin", 36, 36),
        ("meter.rx_pin", 39, 39),  # input-only is fine for RX: the IR head drives it
        ("battery.stay_awake_pin", 33, 33),
        ("battery.stay_awake_pin", 0, 0),
        ("meter.tx_pin", 33, 33),
        ("meter.address", 127, 127),
        ("meter.address", 0, 0),
        ("meter.timeout_ms", 100, 100),
        ("meter.retries", 0, 0),
        ("meter.model", "MULTICAL 403", "MULTICAL 403"),
        ("meter.model", " MULTICAL® 603 ", "MULTICAL® 603"),
        ("meter.model", "m" * 64, "m" * 64),
        ("meter.read_budget", 0, 0),
        ("meter.read_budget", 1, 1),
        ("meter.read_budget", 86400, 86400),
        ("update_interval", 300, 300),
        ("update_interval", 60.0, 60),
        ("update_interval", 5, 5),
        ("update_interval", 86400, 86400),
        ("align", True, True),
        ("wifi.ssid", "x" * 32, "x" * 32),
        ("wifi.password", "p" * 64, "p" * 64),
    ],
)
def test_good_values(path, value, expected):
    cfg = validate(with_(MIN_ESP32, path, value))
    node = cfg
    for k in path.split("."):
        node = node[k]
    assert node == expected


# -- every error: path and exact message ---------------------------------------------------------

SENSORS = "heat_energy, power, temp1, temp2, temp_diff, flow, volume"
DURATION = 'expected seconds (a number) or a duration like "60s", "15min", "1h", "2h30min"'

HA_VERSION = (
    'expected the Home Assistant version as "YYYY.M" (e.g. "2025.4"), or null for a current one'
)

BAD = [
    # root keys
    (
        "nodeid",
        "x",
        "nodeid",
        "unknown key; expected one of node_id, wifi, mqtt, meter, "
        "update_interval, align, sensors, custom, battery, buffer",
    ),
    ("node_id", "my node", "node_id", 'expected up to 64 letters, digits, _ or -, got "my node"'),
    (
        "node_id",
        "x" * 65,
        "node_id",
        'expected up to 64 letters, digits, _ or -, got "%s..."' % ("x" * 37),
    ),
    ("node_id", None, "node_id", "expected a string, got null"),
    # wifi
    ("wifi", "home", "wifi", "expected an object {...}, got a string"),
    ("wifi.ssid", "", "wifi.ssid", "required on the ESP32: the name of your Wi-Fi network"),
    ("wifi.ssid", 5, "wifi.ssid", "expected a string, got 5"),
    ("wifi.ssid", "x" * 33, "wifi.ssid", "expected at most 32 bytes (a Wi-Fi limit), got 33"),
    ("wifi.ssid", "ä" * 17, "wifi.ssid", "expected at most 32 bytes (a Wi-Fi limit), got 34"),
    ("wifi.psk", "x", "wifi.psk", "unknown key; expected one of ssid, password"),
    # mqtt
    ("mqtt", [], "mqtt", "expected an object {...}, got a list"),
    ("mqtt.host", "", "mqtt.host", "required: the MQTT broker's host name or IP address"),
    (
        "mqtt.host",
        "mqtt://broker:1883",
        "mqtt.host",
        "expected a host name or IP address "
        'without a scheme (TLS: set mqtt.tls), got "mqtt://broker:1883"',
    ),
    (
        "mqtt.host",
        "broker:1883",
        "mqtt.host",
        'expected a host name or IP address; put the port in mqtt.port, got "broker:1883"',
    ),
    ("mqtt.host", "my broker", "mqtt.host", 'expected a host name or IP address, got "my broker"'),
    ("mqtt.port", "1883x", "mqtt.port", 'expected an integer 1..65535, got "1883x"'),
    ("mqtt.port", True, "mqtt.port", "expected an integer 1..65535, got true"),
    ("mqtt.port", 0, "mqtt.port", "expected an integer 1..65535, got 0"),
    ("mqtt.port", 65536, "mqtt.port", "expected an integer 1..65535, got 65536"),
    ("mqtt.port", 1883.0, "mqtt.port", "expected an integer 1..65535, got 1883.0"),
    ("mqtt.port", 10**30, "mqtt.port", "expected an integer 1..65535, got a huge number"),
    ("mqtt.tls", "yes", "mqtt.tls", 'expected true or false, got "yes"'),
    ("mqtt.tls", 1, "mqtt.tls", "expected true or false, got 1"),
    ("mqtt.discovery", None, "mqtt.discovery", "expected true or false, got null"),
    ("mqtt.user", 7, "mqtt.user", "expected a string, got 7"),
    ("mqtt.ca_file", 7, "mqtt.ca_file", "expected a string, got 7"),
    ("mqtt.ca_file", "ca.crt", "mqtt.ca_file", "set mqtt.tls to true to use ca_file"),
    ("mqtt.base_topic", "", "mqtt.base_topic", "required: a topic prefix such as kmp2mqtt"),
    (
        "mqtt.base_topic",
        "home/#",
        "mqtt.base_topic",
        'must not contain the MQTT wildcards # or +, got "home/#"',
    ),
    (
        "mqtt.base_topic",
        "a/+/b",
        "mqtt.base_topic",
        'must not contain the MQTT wildcards # or +, got "a/+/b"',
    ),
    (
        "mqtt.base_topic",
        "/kmp",
        "mqtt.base_topic",
        'must not start or end with / or contain empty levels, got "/kmp"',
    ),
    (
        "mqtt.base_topic",
        "kmp/",
        "mqtt.base_topic",
        'must not start or end with / or contain empty levels, got "kmp/"',
    ),
    (
        "mqtt.discovery_prefix",
        "ha//x",
        "mqtt.discovery_prefix",
        'must not start or end with / or contain empty levels, got "ha//x"',
    ),
    (
        "mqtt.base_topic",
        "kmp\n2mqtt",
        "mqtt.base_topic",
        'must not contain control characters, got "kmp?2mqtt"',
    ),
    (
        "mqtt.discovery_prefix",
        "#",
        "mqtt.discovery_prefix",
        'must not contain the MQTT wildcards # or +, got "#"',
    ),
    (
        "mqtt.hots",
        "x",
        "mqtt.hots",
        "unknown key; expected one of host, port, user, password, "
        "tls, ca_file, base_topic, discovery, discovery_prefix, ha_version",
    ),
    # meter
    ("meter", 1, "meter", "expected an object {...}, got a number"),
    ("meter.uart", 0, "meter.uart", "UART0 is the REPL console; use 1 or 2"),
    ("meter.uart", 3, "meter.uart", "expected 1 or 2 (ESP32 UART1/UART2), got 3"),
    ("meter.uart", True, "meter.uart", "expected 1 or 2 (ESP32 UART1/UART2), got true"),
    ("meter.uart", "1", "meter.uart", 'expected 1 or 2 (ESP32 UART1/UART2), got "1"'),
    ("meter.rx_pin", 40, "meter.rx_pin", "expected an ESP32 GPIO number 0..39, got 40"),
    ("meter.rx_pin", -1, "meter.rx_pin", "expected an ESP32 GPIO number 0..39, got -1"),
    ("meter.rx_pin", "GPIO13", "meter.rx_pin", 'expected an ESP32 GPIO number 0..39, got "GPIO13"'),
    (
        "meter.rx_pin",
        6,
        "meter.rx_pin",
        "GPIO6 is wired to the SPI flash (GPIO6..11); use another pin",
    ),
    (
        "meter.tx_pin",
        11,
        "meter.tx_pin",
        "GPIO11 is wired to the SPI flash (GPIO6..11); use another pin",
    ),
    ("meter.tx_pin", 24, "meter.tx_pin", "GPIO24 does not exist on the ESP32"),
    ("meter.tx_pin", 34, "meter.tx_pin", "GPIO34 is input-only (GPIO34..39); TX drives the IR LED"),
    ("meter.tx_pin", 39, "meter.tx_pin", "GPIO39 is input-only (GPIO34..39); TX drives the IR LED"),
    ("meter.tx_pin", 13, "meter.tx_pin", "must differ from meter.rx_pin (both GPIO13)"),
    ("meter.address", 256, "meter.address", "expected an integer 0..255, got 256"),
    ("meter.address", "0x3F", "meter.address", 'expected an integer 0..255, got "0x3F"'),
    ("meter.timeout_ms", 99, "meter.timeout_ms", "expected an integer 100..10000, got 99"),
    ("meter.timeout_ms", 10001, "meter.timeout_ms", "expected an integer 100..10000, got 10001"),
    ("meter.retries", 6, "meter.retries", "expected an integer 0..5, got 6"),
    ("meter.retries", False, "meter.retries", "expected an integer 0..5, got false"),
    ("meter.port", 0, "meter.port", "expected a string, got 0"),
    ("meter.model", 403, "meter.model", "expected a string, got 403"),
    ("meter.model", "m" * 65, "meter.model", "at most 64 characters, got 65"),
    ("meter.read_budget", -1, "meter.read_budget", "expected an integer 0..86400, got -1"),
    ("meter.read_budget", "24", "meter.read_budget", 'expected an integer 0..86400, got "24"'),
    (
        "meter.baud",
        1200,
        "meter.baud",
        "unknown key; expected one of uart, rx_pin, tx_pin, address, timeout_ms, retries, port, model, read_budget",
    ),
    # update_interval, align
    ("update_interval", 4, "update_interval", "expected 5 s .. 24 h (5..86400 seconds), got 4"),
    (
        "update_interval",
        86401,
        "update_interval",
        "expected 5 s .. 24 h (5..86400 seconds), got 86401",
    ),
    (
        "update_interval",
        "500ms",
        "update_interval",
        'expected 5 s .. 24 h (5..86400 seconds), got "500ms"',
    ),
    (
        "update_interval",
        "25h",
        "update_interval",
        'expected 5 s .. 24 h (5..86400 seconds), got "25h"',
    ),
    ("update_interval", 60.5, "update_interval", "expected whole seconds, got 60.5"),
    ("update_interval", "5500ms", "update_interval", 'expected whole seconds, got "5500ms"'),
    ("update_interval", "60", "update_interval", DURATION + ', got "60"'),
    ("update_interval", "1m", "update_interval", DURATION + ', got "1m"'),
    ("update_interval", "h", "update_interval", DURATION + ', got "h"'),
    ("update_interval", "", "update_interval", DURATION + ', got ""'),
    ("update_interval", "1.5.5s", "update_interval", DURATION + ', got "1.5.5s"'),
    ("update_interval", True, "update_interval", DURATION + ", got true"),
    ("update_interval", None, "update_interval", DURATION + ", got null"),
    (
        "update_interval",
        float("nan"),
        "update_interval",
        "expected 5 s .. 24 h (5..86400 seconds), got nan",
    ),
    (
        "update_interval",
        float("inf"),
        "update_interval",
        "expected 5 s .. 24 h (5..86400 seconds), got inf",
    ),
    ("align", "yes", "align", 'expected true or false, got "yes"'),
    # sensors
    ("sensors", ["power"], "sensors", 'expected an object like {"heat_energy": {}}, got a list'),
    ("sensors.heat_enrgy", {}, "sensors.heat_enrgy", "unknown sensor; expected one of " + SENSORS),
    (
        "sensors.e8",
        {},
        "sensors.e8",
        "unknown sensor; expected one of "
        + SENSORS
        + "; read e8 as a custom register with command 0x0061",
    ),
    ("sensors.power", True, "sensors.power", "expected an object {...}, got a boolean"),
    ("sensors.power", {"name": ""}, "sensors.power.name", "must not be empty"),
    ("sensors.power", {"name": 5}, "sensors.power.name", "expected a string, got 5"),
    ("sensors.power", {"id": "p"}, "sensors.power.id", "unknown key; expected one of name"),
    ("sensors", {}, "sensors", "nothing to read: list at least one sensor or custom register"),
    # custom
    (
        "custom",
        {"name": "x"},
        "custom",
        'expected a list like [{"name": "...", "command": "0x003C"}], got an object',
    ),
    ("custom", ["x"], "custom[0]", "expected an object {...}, got a string"),
    (
        "custom",
        [{"name": "E8"}],
        "custom[0].command",
        "required: the register id as 2-byte hex like 0x003C",
    ),
    (
        "custom",
        [{"command": "0x61"}],
        "custom[0].name",
        "required: the sensor's name in Home Assistant",
    ),
    (
        "custom",
        [{"name": "E8", "command": "0x3C0000"}],
        "custom[0].command",
        'expected 2-byte hex like 0x003C, got "0x3C0000"',
    ),
    (
        "custom",
        [{"name": "E8", "command": "0x"}],
        "custom[0].command",
        'expected 2-byte hex like 0x003C, got "0x"',
    ),
    (
        "custom",
        [{"name": "E8", "command": "003C"}],
        "custom[0].command",
        'expected 2-byte hex like 0x003C, got "003C"',
    ),
    (
        "custom",
        [{"name": "E8", "command": "0x00G1"}],
        "custom[0].command",
        'expected 2-byte hex like 0x003C, got "0x00G1"',
    ),
    (
        "custom",
        [{"name": "E8", "command": "e8"}],
        "custom[0].command",
        'expected 2-byte hex like 0x003C, got "e8"; e8 is 0x0061',
    ),
    (
        "custom",
        [{"name": "E8", "command": 70000}],
        "custom[0].command",
        "expected an integer 0..65535 or 2-byte hex like 0x003C, got 70000",
    ),
    (
        "custom",
        [{"name": "E8", "command": -1}],
        "custom[0].command",
        "expected an integer 0..65535 or 2-byte hex like 0x003C, got -1",
    ),
    (
        "custom",
        [{"name": "E8", "command": True}],
        "custom[0].command",
        "expected 2-byte hex like 0x003C, got true",
    ),
    (
        "custom",
        [{"name": "E8", "command": 97.0}],
        "custom[0].command",
        "expected 2-byte hex like 0x003C, got 97.0",
    ),
    (
        "custom",
        [{"name": "E8", "command": 97, "id": "E8"}],
        "custom[0].id",
        'expected up to 64 lower-case letters, digits or _, got "E8"',
    ),
    (
        "custom",
        [{"name": "E8", "command": 97, "id": ""}],
        "custom[0].id",
        'expected up to 64 lower-case letters, digits or _, got ""',
    ),
    (
        "custom",
        [{"name": "E8", "command": 97, "id": "e-8"}],
        "custom[0].id",
        'expected up to 64 lower-case letters, digits or _, got "e-8"',
    ),
    (
        "custom",
        [{"name": "°/³", "command": 97}],
        "custom[0].id",
        "cannot make an id from the name; set id",
    ),
    (
        "custom",
        [{"name": "E8", "command": 97, "unit": "kWh"}],
        "custom[0].unit",
        "unknown key; expected one of name, command, id",
    ),
    (
        "custom",
        [{"name": "Time", "command": 97}],
        "custom[0].id",
        'id "time" (made from the name) is reserved (the state and history JSON use it); '
        "set another id",
    ),
    (
        "custom",
        [{"name": "T", "command": 97, "id": "time"}],
        "custom[0].id",
        'id "time" is reserved (the state and history JSON use it); set another id',
    ),
    (
        "custom",
        [{"name": "Flow", "command": 97}],
        "custom[0].id",
        'duplicate id "flow" (made from the name): already used by sensors.flow; set another id',
    ),
    # battery and buffer (issue 5)
    ("battery.deep_sleep", "yes", "battery.deep_sleep", 'expected true or false, got "yes"'),
    ("battery.wake_deadline_s", 2, "battery.wake_deadline_s", "expected an integer 5..120, got 2"),
    ("battery.max_backoff_s", 10, "battery.max_backoff_s", "expected an integer 60..86400, got 10"),
    ("battery.stay_awake_pin", 7, "battery.stay_awake_pin",
     "GPIO7 is wired to the SPI flash (GPIO6..11); use another pin"),
    ("battery.stay_awake_pin", 34, "battery.stay_awake_pin",
     "GPIO34 is input-only without a pull-up (GPIO34..39); the pin is read with the internal "
     "pull-up: use another pin"),
    ("battery.stay_awake_pin", 39, "battery.stay_awake_pin",
     "GPIO39 is input-only without a pull-up (GPIO34..39); the pin is read with the internal "
     "pull-up: use another pin"),
    ("battery.stay_awake_pin", 40, "battery.stay_awake_pin",
     "expected an ESP32 GPIO number 0..39, got 40"),
    # Home Assistant version (older HA: fewer device classes)
    ("mqtt.ha_version", "2025", "mqtt.ha_version", HA_VERSION + ', got "2025"'),
    ("mqtt.ha_version", "2025.13", "mqtt.ha_version", HA_VERSION + ', got "2025.13"'),
    ("mqtt.ha_version", "2025.0", "mqtt.ha_version", HA_VERSION + ', got "2025.0"'),
    ("mqtt.ha_version", "25.4", "mqtt.ha_version", HA_VERSION + ', got "25.4"'),
    ("mqtt.ha_version", "2025.4b1", "mqtt.ha_version", HA_VERSION + ', got "2025.4b1"'),
    ("mqtt.ha_version", "2025.4.1.2", "mqtt.ha_version", HA_VERSION + ', got "2025.4.1.2"'),
    ("mqtt.ha_version", " 2025.4", "mqtt.ha_version", HA_VERSION + ', got " 2025.4"'),
    ("mqtt.ha_version", "", "mqtt.ha_version", HA_VERSION + ', got ""'),
    ("mqtt.ha_version", True, "mqtt.ha_version", HA_VERSION + ", got true"),
    ("mqtt.ha_version", 2025.4, "mqtt.ha_version", HA_VERSION + ", got 2025.4; write it as a "
     "string, in quotes (2025.10 as a number is 2025.1)"),
    ("mqtt.ha_version", 2025, "mqtt.ha_version", HA_VERSION + ", got 2025; write it as a "
     "string, in quotes (2025.10 as a number is 2025.1)"),
    ("battery.ip", "10.0.0.256", "battery.ip",
     'expected a dotted IPv4 address like 192.168.1.50, got "10.0.0.256"'),
    ("battery.ip", "10.0.0.5", "battery.netmask",
     "a static IP needs ip, netmask and gateway together"),
    ("battery.sleep", True, "battery.sleep", "unknown key; expected one of deep_sleep, "
     "wake_deadline_s, max_backoff_s, stay_awake_pin, ip, netmask, gateway, dns"),
    ("buffer.capacity", 100000, "buffer.capacity", "expected an integer 16..4032, got 100000"),
    ("buffer.path", "", "buffer.path", "expected a directory name, e.g. buffer"),
    ("battery", [], "battery", "expected an object {...}, got a list"),
]  # fmt: skip


def test_ha_version_is_kept_as_yyyymm():
    for text, version in (("2025.4", 202504), ("2025.10", 202510), ("2025.11.3", 202511),
                          ("2024.12.0", 202412), ("2020.1", 202001), (None, None)):  # fmt: skip
        assert validate(with_(MIN_ESP32, "mqtt.ha_version", text))["mqtt"]["ha_version"] == version
    assert validate(MIN_ESP32)["mqtt"]["ha_version"] is None  # default: a current HA


RESERVED = {
    "time": "the state and history JSON use it",
    "seq": "the state and history JSON use it",
    "clock": "the state and history JSON use it",
    "uptime_s": "the state and history JSON use it",
    "rssi": "the node's diagnostic entity in Home Assistant",
    "uptime": "the node's diagnostic entity in Home Assistant",
    "free_heap": "the node's diagnostic entity in Home Assistant",
    "link_errors": "the node's diagnostic entity in Home Assistant",
    "last_error": "the node's diagnostic entity in Home Assistant",
    "meter_problem": "the node's diagnostic entity in Home Assistant",
}


@pytest.mark.parametrize("cid", sorted(RESERVED))
def test_ids_of_payload_keys_and_diagnostic_entities_are_reserved(cid):
    raw = dict(MIN_ESP32, custom=[{"name": "X", "command": "0x03EC", "id": cid}])
    assert one_error(raw) == ("custom[0].id",
                              'id "%s" is reserved (%s); set another id' % (cid, RESERVED[cid]))  # fmt: skip
    named = dict(MIN_ESP32, custom=[{"name": cid.replace("_", " ").title(), "command": "0x03EC"}])
    assert one_error(named) == ("custom[0].id", 'id "%s" (made from the name) is reserved (%s); '
                                "set another id" % (cid, RESERVED[cid]))  # fmt: skip


def test_reserved_ids_cover_every_diagnostic_entity_and_payload_key():
    # config.py lists them itself (the validator loads nothing else); here they are derived
    # from the code that uses them.
    import discovery
    import payloads

    diag_ids = {entry[0] for entry in discovery.DIAGNOSTICS}
    history = json.loads(payloads.history_payload({}, None, 7, 60))  # every extra key at once
    state = json.loads(payloads.state_payload({}, "2026-11-23T12:00:00Z"))
    assert set(config.DIAGNOSTIC_IDS) == diag_ids
    assert set(config.PAYLOAD_KEYS) == set(history) | set(state)
    assert set(config.RESERVED_IDS) == diag_ids | set(history) | set(state)


def test_deep_sleep_needs_a_minute_between_reads():
    raw = with_(MIN_ESP32, "battery.deep_sleep", True)
    raw["update_interval"] = "30s"
    assert one_error(raw) == (
        "update_interval",
        "deep sleep needs at least 60 s between reads, got 30 s",
    )
    raw["update_interval"] = "15min"
    assert validate(raw)["battery"]["deep_sleep"] is True


def test_deep_sleep_is_for_the_esp32_only():
    raw = with_(MIN_ESP32, "battery.deep_sleep", True)
    raw["meter"] = {"port": "/dev/ttyUSB0"}
    with pytest.raises(ConfigError) as e:
        validate(raw, target="host")
    assert ("battery.deep_sleep", "only on the ESP32; a host node stays awake") in e.value.errors


@pytest.mark.parametrize(
    "where, value, path, message", BAD, ids=["%s=%r" % (b[0], b[1])[:60] for b in BAD]
)
def test_bad_value_is_reported_with_path_and_message(where, value, path, message):
    assert one_error(with_(MIN_ESP32, where, value)) == (path, message)


def test_align_needs_an_interval_that_divides_a_day():
    raw = dict(MIN_ESP32, update_interval="7s", align=True)
    assert one_error(raw) == (
        "align",
        "needs an update_interval that divides 24 h evenly (e.g. 60, 300, 900, 3600 s), got 7 s",
    )
    assert validate(dict(MIN_ESP32, update_interval="15min", align=True))["align"] is True


def test_password_without_user():
    raw = with_(MIN_ESP32, "mqtt.password", "s3cret")
    assert one_error(raw) == (
        "mqtt.password",
        "set mqtt.user too: MQTT sends a password only with a user",
    )


def test_root_must_be_an_object():
    assert one_error([1, 2]) == ("", "expected an object {...}, got a list")
    assert str(ConfigError([("", "expected an object {...}, got a list")])) == (
        "expected an object {...}, got a list"
    )


def test_host_target_ignores_wifi_but_checks_its_types():
    assert validate(MIN_HOST, "host")["wifi"] == {"ssid": "", "password": ""}
    assert one_error(with_(MIN_HOST, "wifi.ssid", 1), "host") == (
        "wifi.ssid",
        "expected a string, got 1",
    )
    assert one_error(with_(MIN_HOST, "meter.port", ""), "host") == (
        "meter.port",
        "required on a host: the IR head's serial device, e.g. /dev/ttyUSB0",
    )


# -- many errors at once -------------------------------------------------------------------------


def test_all_errors_are_collected_in_one_config_error():
    raw = {
        "wifi": {"ssid": "home"},
        "mqtt": {"host": "b", "port": "1883x", "tls": "no"},
        "meter": {"rx_pin": 7, "tx_pin": 35, "uart": 0},
        "update_interval": "2s",
        "sensors": {"heat_enrgy": {}, "power": {}},
        "custom": [
            {"name": "A", "command": "0x0061"},
            {"name": "B", "command": "0x3C0000"},
            {"name": "a", "command": 1},
        ],
        "extra": 1,
    }
    with pytest.raises(ConfigError) as exc:
        validate(raw)
    errs = exc.value.errors
    assert [p for p, _ in errs] == [
        "extra",
        "mqtt.port",
        "mqtt.tls",
        "meter.uart",
        "meter.rx_pin",
        "meter.tx_pin",
        "update_interval",
        "sensors.heat_enrgy",
        "custom[1].command",
        "custom[2].id",
    ]
    assert all(isinstance(p, str) and isinstance(m, str) for p, m in errs)
    text = str(exc.value)
    assert text.count("\n") == len(errs) - 1
    assert (
        text.splitlines()[8] == 'custom[1].command: expected 2-byte hex like 0x003C, got "0x3C0000"'
    )
    assert text.splitlines()[9] == (
        'custom[2].id: duplicate id "a" (made from the name): already used by custom[0]; '
        "set another id"
    )


def test_duplicate_ids_name_both_places():
    raw = dict(
        MIN_ESP32,
        custom=[
            {"name": "One", "command": 1, "id": "x"},
            {"name": "Two", "command": 2, "id": "power"},
            {"name": "Three", "command": 3, "id": "x"},
        ],
    )
    assert errors_of(raw) == [
        ("custom[1].id", 'duplicate id "power": already used by sensors.power; set another id'),
        ("custom[2].id", 'duplicate id "x": already used by custom[0]; set another id'),
    ]


def test_same_register_twice_is_allowed():
    # the issue's own example reads 0x3C as heat_energy and as a custom sensor
    raw = dict(MIN_ESP32, custom=[{"name": "Custom Heat Energy", "command": "0x003C"}])
    rids = [r[1] for r in validate(raw)["registers"]]
    assert rids.count(0x3C) == 2


# -- secrets -------------------------------------------------------------------------------------

SECRET = "hunter2-Sup3r"


@pytest.mark.parametrize(
    "raw",
    [
        with_(MIN_ESP32, "wifi.password", SECRET * 10),
        with_(MIN_ESP32, "mqtt.password", SECRET * 10),
        with_(with_(MIN_ESP32, "mqtt.password", SECRET), "mqtt.user", ""),
        with_(MIN_ESP32, "mqtt.passwd", SECRET),
        with_(MIN_ESP32, "wifi.pass", SECRET),
        with_(MIN_ESP32, "password", SECRET),
        with_(MIN_ESP32, "wifi", SECRET),
        with_(MIN_ESP32, "mqtt", SECRET),
        with_(MIN_ESP32, "wifi.password", [SECRET]),
        with_(MIN_ESP32, "mqtt.password", {"v": SECRET}),
    ],
)
def test_secrets_are_never_echoed(raw):
    with pytest.raises(ConfigError) as exc:
        validate(raw)
    assert "hunter2" not in str(exc.value)
    assert "hunter2" not in repr(exc.value.errors)


def test_secret_type_errors_say_the_type_only():
    assert one_error(with_(MIN_ESP32, "wifi.password", 12345678)) == (
        "wifi.password",
        "expected a string, got a number",
    )
    assert one_error(with_(MIN_ESP32, "mqtt.password", "x" * 65)) == (
        "mqtt.password",
        "expected at most 64 bytes, got 65",
    )


# -- durations and slugs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("60s", 60),
        ("5s", 5),
        ("15min", 900),
        ("1h", 3600),
        ("24h", 86400),
        ("1d", 86400),
        ("2h30min", 9000),
        ("2h 30min", 9000),
        ("1h30s", 3630),
        ("1.5h", 5400),
        ("0.5min", 30),
        ("5000ms", 5),
        ("90 s", 90),
        ("10sec", 10),
        (" 15MIN ", 900),
        ("1min30s", 90),
    ],
)
def test_duration_strings(text, seconds):
    assert validate(dict(MIN_ESP32, update_interval=text))["update_interval"] == seconds


@pytest.mark.parametrize(
    "text", ["", "s", "60", "1m", "60 seconds", "1,5h", "-5s", "1e3s", "5s!", "1.5.5s", "x" * 40]
)
def test_duration_ms_rejects(text):
    assert config.duration_ms(text) is None


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Custom Heat Energy", "custom_heat_energy"),
        ("E8 (m³·T1)", "e8_m_t1"),
        ("  Flow--2  ", "flow_2"),
        ("Wärmemenge Süd", "warmemenge_sud"),
        ("Fjernvarme Ø", "fjernvarme_o"),
        ("ÆØÅ", "aeoa"),
        ("T1/T2", "t1_t2"),
        ("snake_case_already", "snake_case_already"),
        ("__x__", "x"),
        ("°C", "c"),
        ("° ³ ·", ""),
        ("A" * 80, "a" * 64),
    ],
)
def test_slug(name, expected):
    assert slug(name) == expected


def test_slug_ids_fill_custom_ids():
    raw = dict(MIN_ESP32, custom=[{"name": "Wärme (E1)", "command": "0X3c"}])
    assert validate(raw)["custom"] == [{"name": "Wärme (E1)", "command": 0x3C, "id": "warme_e1"}]


@pytest.mark.parametrize(
    "command, rid",
    [
        ("0x003C", 0x3C),
        ("0x3C", 0x3C),
        ("0x3c", 0x3C),
        ("0xFFFF", 0xFFFF),
        ("0x0", 0),
        (0, 0),
        (60, 60),
        (65535, 65535),
    ],
)
def test_command_forms(command, rid):
    raw = dict(MIN_ESP32, custom=[{"name": "C", "command": command}])
    assert validate(raw)["custom"][0]["command"] == rid


# -- load() --------------------------------------------------------------------------------------


def test_load_missing_file_names_it(tmp_path):
    path = str(tmp_path / "nope.json")
    with pytest.raises(ConfigError) as exc:
        load(path)
    ((p, msg),) = exc.value.errors
    assert p == path and msg.startswith("cannot read the file: ")


def test_load_json_syntax_error_names_file_and_problem(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"mqtt": {"host": "b",}\n')
    with pytest.raises(ConfigError) as exc:
        load(str(path))
    ((p, msg),) = exc.value.errors
    assert p == str(path)
    assert msg.startswith("invalid JSON: ") and "line 1" in msg
    assert str(exc.value).startswith(str(path) + ": invalid JSON: ")


def test_load_rejects_non_utf8_and_deep_nesting(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"node_id": "\xff"}')
    with pytest.raises(ConfigError) as exc:
        load(str(path))
    assert exc.value.errors == [(str(path), "not UTF-8 text")]
    path.write_text("[" * 100000)
    with pytest.raises(ConfigError) as exc:
        load(str(path))
    assert exc.value.errors[0][1].startswith("invalid JSON: ")


@pytest.mark.parametrize(
    "where, value",
    [
        ("wifi.ssid", "\ud800"),
        ("wifi.password", "x\udfff"),
        ("mqtt.host", "\ud800"),
        ("sensors.power", {"name": "\ud800"}),
        ("sensors.\ud800", {}),
        ("custom", [{"name": "\ud800", "command": "\ud800"}]),
    ],
)
def test_lone_surrogates_from_json_escapes_are_reported_printably(tmp_path, where, value):
    # CPython's json turns "\ud800" into a str that cannot be encoded, let alone printed
    path = tmp_path / "config.json"
    path.write_text(json.dumps(with_(MIN_ESP32, where, value)))  # ensure_ascii: \ud800 escapes
    with pytest.raises(ConfigError) as exc:
        load(str(path))
    str(exc.value).encode("utf-8")
    assert all("surrogate" in m or "?" in p + m for p, m in exc.value.errors)


def test_load_accepts_a_byte_order_mark(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(MIN_ESP32).encode())
    assert load(str(path))["wifi"]["ssid"] == "home"


def test_load_validation_errors_keep_config_paths(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(with_(MIN_ESP32, "mqtt.port", "1883x")))
    with pytest.raises(ConfigError) as exc:
        load(str(path))
    assert exc.value.errors == [("mqtt.port", 'expected an integer 1..65535, got "1883x"')]


# -- property: junk never crashes ----------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["", "0x3C", "60s", "2h30min", "time", "flow", "/dev/ttyUSB0", "a:1"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["name", "command", "id", "ssid", "host", "port", "uart", "x"])
            | st.text(max_size=8),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
PATHS = [
    "node_id",
    "wifi",
    "wifi.ssid",
    "wifi.password",
    "mqtt",
    "mqtt.host",
    "mqtt.port",
    "mqtt.user",
    "mqtt.password",
    "mqtt.tls",
    "mqtt.ca_file",
    "mqtt.base_topic",
    "mqtt.discovery",
    "mqtt.discovery_prefix",
    "mqtt.ha_version",
    "meter",
    "meter.uart",
    "meter.rx_pin",
    "meter.tx_pin",
    "meter.address",
    "meter.timeout_ms",
    "meter.retries",
    "meter.port",
    "meter.model",
    "meter.read_budget",
    "update_interval",
    "align",
    "sensors",
    "sensors.power",
    "sensors.temp1",
    "custom",
    "junk",
]


def _checked(raw, target):
    try:
        cfg = validate(raw, target)
    except ConfigError as e:
        assert e.errors and all(isinstance(p, str) and isinstance(m, str) for p, m in e.errors)
        assert str(e).count("\n") == len(e.errors) - 1
        return None
    assert isinstance(cfg["update_interval"], int)
    assert [r[0] for r in cfg["registers"]] == list(
        [k for k in config.registers.SENSOR_KEYS if k in cfg["sensors"]]
        + [c["id"] for c in cfg["custom"]]
    )
    return cfg


@settings(max_examples=300, deadline=None)
@given(junk=json_values, target=st.sampled_from(config.TARGETS))
def test_junk_root_only_raises_config_error(junk, target):
    _checked(junk, target)


@settings(max_examples=500, deadline=None)
@given(
    edits=st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=4),
    target=st.sampled_from(config.TARGETS),
)
def test_junk_anywhere_only_raises_config_error(edits, target):
    raw = copy.deepcopy(MIN_HOST if target == "host" else MIN_ESP32)
    for path, value in edits:
        try:
            raw = with_(raw, path, value)
        except (AttributeError, TypeError, ValueError, IndexError):
            pass  # the parent was replaced by a scalar or a list: nothing to edit there
    _checked(raw, target)


@settings(max_examples=200, deadline=None)
@given(custom=st.lists(json_values, max_size=5))
def test_junk_custom_entries_only_raise_config_error(custom):
    _checked(dict(MIN_ESP32, custom=custom), "esp32")


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40))
def test_junk_text_files_only_raise_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load(str(path))
    except ConfigError:
        pass


def test_a_read_budget_too_small_for_one_read_is_named():
    # 9 registers take two GetRegister requests: a budget of 1 a day cannot read them once
    raw = with_(MIN_ESP32, "meter.read_budget", 1)
    raw["custom"] = [{"name": "R%d" % i, "command": "0x%04X" % (0x100 + i)} for i in range(5)]
    raw["sensors"] = {"heat_energy": {}, "power": {}, "flow": {}, "volume": {}}
    path, message = one_error(raw)
    assert path == "meter.read_budget"
    assert message.startswith("1 exchange(s) a day cannot read the 9 registers configured")
    assert "set at least 2, or 0 for no budget" in message
    raw["meter"]["read_budget"] = 2
    assert validate(raw)["meter"]["read_budget"] == 2
