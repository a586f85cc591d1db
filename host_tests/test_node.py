# The node on fakes (virtual MULTICAL, fake broker, fake clock): what it publishes each cycle,
# exact values, null for failed registers, the totals guard, broker outages and crashes.

import json
from decimal import Decimal

import ha_rules
import loop
from kmp import registers
from node_harness import BASE_CONFIG, Harness

SEVEN = registers.SENSOR_KEYS


def state_of(h):
    raw = h.broker.retained[h.topic("state")]
    return raw.decode(), json.loads(raw, parse_float=Decimal)


def test_first_cycle_publishes_the_contract():
    h = Harness()
    h.cycle()
    assert h.node.node_id == "kamstrup_67051653"
    r = h.broker.retained
    assert r[h.topic("status")] == b"online"
    client = h.clients[0]
    assert client.will == (h.topic("status"), b"offline", True, 1)
    text, state = state_of(h)
    for sid in SEVEN:
        rid = registers.by_key(sid)[0]
        assert ('"%s":%s' % (sid, h.meter.truth_text(rid))) in text  # the meter's exact text
    assert ('"e8":%s' % h.meter.truth_text(0x61)) in text
    assert state["time"].startswith("2026-11-23T12:01:0")
    units = json.loads(r[h.topic("units")])
    assert units["heat_energy"]["unit"] == "GJ" and units["flow"]["unit"] == "L/h"
    assert units["temp_diff"]["unit"] == "K" and units["volume"]["unit"] == "m³"
    diag = json.loads(r[h.topic("diag")])
    # GetType, GetSerialNo, and one GetRegister for all 8 registers
    assert diag["meter_reachable"] is True and diag["link"]["requests"] == 3
    assert diag["errors"] == 0 and diag["firmware"]


def test_discovery_payloads_are_valid_for_home_assistant():
    h = Harness()
    h.cycle()
    configs = {
        t: json.loads(p) for t, p in h.broker.retained.items() if t.startswith("homeassistant/")
    }
    assert len(configs) == 8 + 6  # 7 sensors + 1 custom, 6 diagnostics
    kinds = {"heat_energy": "total", "volume": "total", "e8": "total"}
    for topic, cfg in configs.items():
        component = topic.split("/")[1]
        sid = cfg["unique_id"].split("kamstrup_67051653_")[1]
        kind = None if cfg.get("entity_category") else kinds.get(sid, "measure")
        assert ha_rules.problems(cfg, component, kind) == [], (topic, cfg)
        assert "object_id" not in cfg and cfg["default_entity_id"].startswith(component + ".")
        assert cfg["availability_topic"] == h.topic("status")
        assert cfg["expire_after"] == 180
        assert cfg["device"]["serial_number"] == "67051653"
    e = configs["homeassistant/sensor/kamstrup_67051653_heat_energy/config"]
    assert (e["device_class"], e["state_class"], e["unit_of_measurement"]) == (
        "energy", "total_increasing", "GJ")  # fmt: skip
    td = configs["homeassistant/sensor/kamstrup_67051653_temp_diff/config"]
    assert (td["device_class"], td["unit_of_measurement"]) == ("temperature_delta", "K")
    fl = configs["homeassistant/sensor/kamstrup_67051653_flow/config"]
    assert (fl["device_class"], fl["unit_of_measurement"]) == ("volume_flow_rate", "L/h")


def test_discovery_once_then_only_state_and_diag():
    h = Harness()
    h.cycle()
    n = len(h.broker.messages)
    h.cycle()
    topics = [m[0] for m in h.broker.messages[n:]]
    assert topics == [h.topic("state"), h.topic("diag")]


def test_failed_register_is_null_never_a_number():
    h = Harness(omit=(0x59,))
    h.cycle()
    text, state = state_of(h)
    assert state["temp_diff"] is None and '"temp_diff":null' in text
    assert state["heat_energy"] is not None


def test_meter_asleep_publishes_nulls_and_reports_it():
    h = Harness()
    h.cycle()
    h.line.asleep = True
    h.cycle()
    _, state = state_of(h)
    assert all(state[k] is None for k in SEVEN)
    diag = json.loads(h.broker.retained[h.topic("diag")])
    assert diag["meter_reachable"] is False and diag["link"]["timeouts"] >= 1


def test_totals_guard_holds_back_a_lower_energy():
    h = Harness()
    h.cycle()
    _, first = state_of(h)
    h.meter._energy //= 2  # the meter now claims half the energy
    for _ in range(2):
        h.cycle()
        _, state = state_of(h)
        assert state["heat_energy"] is None
    diag = json.loads(h.broker.retained[h.topic("diag")])
    assert diag["totals_held"] == 2
    h.cycle()  # the third consecutive lower read: a replaced meter, accepted
    _, state = state_of(h)
    assert state["heat_energy"] is not None and state["heat_energy"] < first["heat_energy"]


def test_broker_outage_is_survived_and_recovered():
    h = Harness()
    h.cycle()
    h.broker.up = False
    for _ in range(3):
        h.cycle()  # never raises; the session is dropped and retried with backoff
    assert h.mqtt.failures >= 1 and not h.mqtt.connected
    h.broker.up = True
    for _ in range(10):
        h.cycle(advance_s=120)
        if h.mqtt.connected:
            break
    assert h.mqtt.connected and h.mqtt.connects == 2
    assert h.broker.retained[h.topic("status")] == b"online"


def test_identity_retried_until_the_meter_answers():
    h = Harness(asleep=True)
    h.cycle()
    assert h.node.node_id is None and not h.broker.messages
    h.line.asleep = False
    h.cycle()
    assert h.node.node_id == "kamstrup_67051653" and h.topic("state") in h.broker.retained


def test_configured_node_id_and_base_topic():
    cfg = dict(BASE_CONFIG)
    cfg["node_id"] = "heat-1"
    cfg["mqtt"] = {"host": "127.0.0.1", "base_topic": "home/heat"}
    h = Harness(cfg)
    h.cycle()
    assert "home/heat/heat-1/state" in h.broker.retained


def test_exceptions_in_a_cycle_are_counted_and_the_loop_goes_on():
    h = Harness()
    h.cycle()

    def boom(rids):
        raise MemoryError("heap exhausted")

    h.link.read = boom
    h.cycle()
    assert h.node.errors == 1 and "MemoryError" in h.node.last_error
    del h.link.read
    h.cycle()
    assert h.node.errors == 1


def test_clock_unknown_means_no_time_in_state():
    h = Harness(clock_known=False)
    h.cycle()
    _, state = state_of(h)
    assert "time" not in state


class FakeTicker:
    def __init__(self, clock):
        self.clock = clock
        self.armed = []

    def arm(self, ms, callback):
        self.armed.append(ms)
        callback()  # fire at once: the test drives cycles


def test_loop_runs_cycles_and_rearms_aligned():
    cfg = dict(BASE_CONFIG)
    cfg["update_interval"] = "15min"
    cfg["align"] = True
    h = Harness(cfg)
    ticker = FakeTicker(h.clock)
    loop.run(h.node, ticker, loop.Flag(), h.platform, max_cycles=3)
    assert h.node.cycles == 3 and len(ticker.armed) == 2
    for ms in ticker.armed:
        assert 0 < ms <= 900 * 1000 and (h.wall_time() + ms // 1000) % 900 < 5
    assert h.platform.feeds >= 3
