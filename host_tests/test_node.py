# The node on fakes (virtual MULTICAL, fake broker, fake clock): what it publishes each cycle,
# exact values, null for failed registers, the totals guard, broker outages and crashes.

import json
from decimal import Decimal

import pytest

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
    assert h.node.node_id == "kmp2mqtt_246f280a1b2c"
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
    assert len(configs) == 8 + 7  # 7 sensors + 1 custom, 7 diagnostics
    kinds = {"heat_energy": "total", "volume": "total", "e8": "total"}
    for topic, cfg in configs.items():
        component = topic.split("/")[1]
        sid = cfg["unique_id"].split("kmp2mqtt_246f280a1b2c_")[1]
        kind = None if cfg.get("entity_category") else kinds.get(sid, "measure")
        assert ha_rules.problems(cfg, component, kind) == [], (topic, cfg)
        assert "object_id" not in cfg and cfg["default_entity_id"].startswith(component + ".")
        assert cfg["availability_topic"] == h.topic("status")
        # readings expire after 3 intervals, diagnostics (sent every DIAG_EVERY cycles) later
        assert cfg["expire_after"] == (900 if cfg.get("entity_category") else 180)
        assert cfg["device"]["serial_number"] == "67051653"
    e = configs["homeassistant/sensor/kmp2mqtt_246f280a1b2c_heat_energy/config"]
    assert (e["device_class"], e["state_class"], e["unit_of_measurement"]) == (
        "energy", "total_increasing", "GJ")  # fmt: skip
    td = configs["homeassistant/sensor/kmp2mqtt_246f280a1b2c_temp_diff/config"]
    assert (td["device_class"], td["unit_of_measurement"]) == ("temperature_delta", "K")
    fl = configs["homeassistant/sensor/kmp2mqtt_246f280a1b2c_flow/config"]
    assert (fl["device_class"], fl["unit_of_measurement"]) == ("volume_flow_rate", "L/h")


def test_discovery_once_then_state_and_diag_every_fifth_cycle():
    h = Harness()
    h.cycle()
    n = len(h.broker.messages)
    for _ in range(5):
        h.cycle()
    topics = [m[0] for m in h.broker.messages[n:]]
    assert topics == [h.topic("state")] * 4 + [h.topic("state"), h.topic("diag")]
    h.line.asleep = True  # a change a user watches: diag goes out at once
    n = len(h.broker.messages)
    h.cycle()
    assert h.topic("diag") in [m[0] for m in h.broker.messages[n:]]


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


def test_the_device_model_is_the_configured_one_else_the_meter_type():
    h = Harness()
    h.cycle()
    cfg = json.loads(h.broker.retained["homeassistant/sensor/kmp2mqtt_246f280a1b2c_power/config"])
    assert cfg["device"]["model"] == "KMP meter, type 0x0403"  # no public name for the code
    conf = dict(BASE_CONFIG)
    conf["meter"] = dict(conf.get("meter", {}), model="MULTICAL 403")
    h = Harness(conf, asleep=True)
    h.cycle()  # the user's name shows from the first boot, before the meter has answered
    problem = "homeassistant/binary_sensor/kmp2mqtt_246f280a1b2c_meter_problem/config"
    assert json.loads(h.broker.retained[problem])["device"]["model"] == "MULTICAL 403"


def test_a_meter_silent_from_the_first_boot_is_reported_at_once():
    # A new user's first boot: head not aligned yet. The node id is the board's, so status,
    # diag and the diagnostic entities go out at once; the sensors wait for their units.
    h = Harness(asleep=True)
    h.cycle()
    assert h.node.node_id == "kmp2mqtt_246f280a1b2c"
    r = h.broker.retained
    assert r[h.topic("status")] == b"online"
    diag = json.loads(r[h.topic("diag")])
    assert diag["meter_reachable"] is False and "no answer" in diag["last_error"]
    state = json.loads(r[h.topic("state")])
    assert all(state[sid] is None for sid in SEVEN)
    assert h.topic("units") not in r  # nothing known yet: no units to say
    configs = {t: json.loads(p) for t, p in r.items() if t.startswith("homeassistant/")}
    assert sorted(t.split("/")[1] for t in configs) == ["binary_sensor"] + ["sensor"] * 6
    problem = configs["homeassistant/binary_sensor/kmp2mqtt_246f280a1b2c_meter_problem/config"]
    assert ha_rules.render(problem["value_template"], diag) == "ON"  # "Meter not answering"
    assert problem["device"]["identifiers"] == ["kmp2mqtt_246f280a1b2c"]
    for topic, cfg in configs.items():
        assert ha_rules.problems(cfg, topic.split("/")[1], None) == [], (topic, cfg)
    # The head is aligned: same node, same device; the sensors and the meter's serial join it.
    h.line.asleep = False
    h.cycle()
    assert h.node.node_id == "kmp2mqtt_246f280a1b2c"
    assert json.loads(r[h.topic("diag")])["meter_reachable"] is True
    assert json.loads(r[h.topic("state")])["heat_energy"] is not None
    configs = {t: json.loads(p) for t, p in r.items() if t.startswith("homeassistant/")}
    assert len(configs) == 8 + 7
    for cfg in configs.values():
        assert cfg["device"]["identifiers"] == ["kmp2mqtt_246f280a1b2c"]
        assert cfg["device"]["serial_number"] == "67051653"
    assert json.loads(r[h.topic("units")])["heat_energy"]["unit"] == "GJ"


def test_an_unplugged_head_is_a_meter_fault_retried_every_cycle():
    # A UART that raises (a USB head unplugged; a failing machine.UART): no traceback, no
    # backoff (asking costs the meter nothing), nulls and the reason published, and the first
    # cycle after it is back reads again.
    h = Harness()
    h.cycle()
    unplugged = {"on": True}
    real_write = h.uart.write

    def write(buf):
        if unplugged["on"]:
            raise OSError(5, "Input/output error")
        return real_write(buf)

    h.uart.write = write
    for _ in range(6):
        h.cycle()
    r = h.broker.retained
    diag = json.loads(r[h.topic("diag")])
    assert diag["meter_reachable"] is False and "Input/output error" in diag["last_error"]
    assert diag["link"]["port_errors"] == 6 and diag["no_answer_streak"] == 0
    assert all(v is None for k, v in json.loads(r[h.topic("state")]).items() if k in SEVEN)
    assert not any("cycle:" in line for line in h.logs)  # a meter fault, not a crash
    unplugged["on"] = False
    h.cycle()
    assert json.loads(r[h.topic("state")])["heat_energy"] is not None
    assert json.loads(r[h.topic("diag")])["meter_reachable"] is True


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
    # marked as history marks it, so the reading can be ordered and matched with its copy
    assert state["clock"] == "unknown" and state["uptime_s"] == h.node.uptime_s()


def test_an_exception_while_publishing_keeps_the_reading(tmp_path):
    h = Harness(buffer_path=str(tmp_path / "buf"))
    h.cycle()

    def boom(reading):
        raise MemoryError("building the state payload")

    h.node._send_state = boom
    h.cycle()
    assert h.node.errors == 1 and h.node.lost == 0
    assert h.node.buffer.pending() == 1  # kept for history, not dropped
    del h.node._send_state
    h.cycle()
    assert h.node.buffer.pending() == 0 and len(h.on("history")) == 1


def test_unsupported_registers_are_asked_again_after_a_day():
    h = Harness()
    h.cycle()
    h.node.link.unsupported.add(0x3C)  # judged unsupported (a hiccup, say)
    h.cycle()
    assert 0x3C in h.node.link.unsupported
    h.clock.advance(86400 * 1000)
    h.cycle()
    assert 0x3C not in h.node.link.unsupported
    _, state = state_of(h)
    assert state["heat_energy"] is not None


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
    assert h.platform.clock_keeps == 3  # the board's NTP housekeeping after every cycle


# -- nothing lost (issue 5) ---------------------------------------------------------------------


def outage(h, cycles):
    """Take the broker down for some cycles; returns the states read meanwhile."""
    h.broker.up = False
    read = []
    for _ in range(cycles):
        h.cycle()
        read.append(h.node.last_state)
    h.broker.up = True
    return read


def recover(h, max_cycles=20):
    """Cycles until the backlog is delivered; returns the states read meanwhile (readings taken
    before the reconnect, which the backoff delays, go through the buffer too)."""
    read = []
    for _ in range(max_cycles):
        h.cycle(advance_s=60)
        read.append(h.node.last_state)
        if h.mqtt.connected and not h.buffer.pending():
            return read
    raise AssertionError("buffer not drained: %d pending" % h.buffer.pending())


def test_outage_readings_arrive_on_history_in_order(tmp_path):
    from timefmt import iso_utc

    h = Harness(buffer_path=str(tmp_path / "buf"))
    h.cycle()
    seen = []
    h.node.log = h.mqtt._log = seen.append
    read = outage(h, 12) + recover(h)
    history = [json.loads(p, parse_float=Decimal) for p in h.on("history")]
    # the log says when the broker is back and what the backlog delivered
    again = [line for line in seen if line.startswith("mqtt: connected to 127.0.0.1:1883 again")]
    assert len(again) == 1 and "failed attempt(s)" in again[0], seen
    delivered_lines = [line for line in seen if line.startswith("history: ")]
    assert delivered_lines[-1].endswith("delivered, 0 still waiting"), delivered_lines
    assert sum(int(line.split()[1]) for line in delivered_lines) == len(history)
    states = [json.loads(p, parse_float=Decimal) for p in h.on("state")]
    assert len(history) >= 12 and [m["seq"] for m in history] == list(range(1, len(history) + 1))
    # every reading reached the broker exactly once: on history (missed) or state (live)
    delivered = history + states[1:]  # states[0] is the reading before the outage
    assert len(delivered) == len(read)
    by_time = {m["time"]: m for m in delivered}
    for values, when in read:
        msg = by_time[iso_utc(when)]
        for sid, text in values.items():
            assert (msg[sid] is None and text is None) or str(msg[sid]) == text
    diag = json.loads(h.broker.retained[h.topic("diag")])
    assert diag["buffered"] == 0 and diag["buffer_dropped"] == 0
    assert diag["history_sent"] == len(history)
    assert h.broker.messages[-1][0] == h.topic("diag")


def test_overflow_drops_exactly_the_oldest_and_counts_them(tmp_path):
    h = Harness(buffer_path=str(tmp_path / "buf"), capacity=16)
    h.cycle()
    read = outage(h, 21)
    h.mqtt._next_try = None  # reconnect at the next cycle (no backoff wait) to count exactly
    h.cycle()
    h.cycle()
    history = [json.loads(p) for p in h.on("history")]
    assert [m["seq"] for m in history] == list(range(6, 22))  # the 5 oldest dropped
    assert [m["time"] for m in history] == [__import__("timefmt").iso_utc(w) for _, w in read[5:]]
    diag = json.loads(h.broker.retained[h.topic("diag")])
    assert diag["buffer_dropped"] == 5 and diag["buffered"] == 0


def test_buffer_survives_a_reboot(tmp_path):
    h = Harness(buffer_path=str(tmp_path / "buf"))
    h.cycle()
    outage(h, 5)
    # power cut: a new node, same flash
    h2 = Harness(buffer_path=str(tmp_path / "buf"))
    h2.broker = h.broker
    h2.mqtt._make_client = h2.make_client
    h2.cycle()
    h2.cycle()
    history = [json.loads(p) for p in h2.on("history")]
    assert [m["seq"] for m in history] == [1, 2, 3, 4, 5]


def test_torn_write_publishes_no_garbage(tmp_path):
    import os

    path = tmp_path / "buf"
    h = Harness(buffer_path=str(path))
    h.cycle()
    outage(h, 6)
    # power lost in the middle of writing the newest slot: cut the segment file mid-slot
    seg = sorted(p for p in os.listdir(path) if p.startswith("s"))[-1]
    size = os.path.getsize(path / seg)
    os.truncate(path / seg, size - 100)
    h2 = Harness(buffer_path=str(path))
    h2.broker = h.broker
    h2.mqtt._make_client = h2.make_client
    for _ in range(3):
        h2.cycle()
    history = [json.loads(p) for p in h2.on("history")]
    assert [m["seq"] for m in history] == [1, 2, 3, 4, 5]  # the torn 6th is skipped
    for m in history:
        assert isinstance(m["heat_energy"], float) and m["time"].startswith("2026-11-23T")


def test_a_corrupt_slot_on_flash_is_skipped_and_reported(tmp_path):
    import os

    path = tmp_path / "buf"
    h = Harness(buffer_path=str(path))
    h.cycle()
    outage(h, 4)
    seg = sorted(p for p in os.listdir(path) if p.startswith("s"))[0]
    with open(path / seg, "r+b") as f:  # flash gone bad in the middle of the 2nd reading
        f.seek(256 + 40)
        b = f.read(1)
        f.seek(256 + 40)
        f.write(bytes((b[0] ^ 0xFF,)))
    h2 = Harness(buffer_path=str(path))
    h2.broker = h.broker
    h2.mqtt._make_client = h2.make_client
    for _ in range(2):
        h2.cycle()
    history = [json.loads(p) for p in h2.on("history")]
    assert [m["seq"] for m in history] == [1, 3, 4]  # never published
    diag = json.loads(h2.broker.retained[h2.topic("diag")])
    assert diag["buffer_corrupt"] == 1 and diag["buffer_dropped"] == 0  # said, not a mystery gap


def test_reading_before_the_clock_is_set_is_marked(tmp_path):
    h = Harness(buffer_path=str(tmp_path / "buf"), clock_known=False)
    h.cycle()
    outage(h, 2)
    h.cycle()
    history = [json.loads(p) for p in h.on("history")]
    assert [m["clock"] for m in history] == ["unknown", "unknown"]
    assert history[0]["time"] is None and history[0]["uptime_s"] < history[1]["uptime_s"]


def test_without_a_buffer_lost_readings_are_counted():
    h = Harness()
    h.cycle()
    outage(h, 3)
    assert h.node.lost == 3


# -- commands and the meter's battery -----------------------------------------------------------


def test_commands_read_now_interval_stay_awake():
    h = Harness()
    h.cycle()
    node = h.node
    assert node.on_command(b"x", b'{"read_now": true}') and node.read_requested
    assert node.on_command(b"x", b'{"interval": "15min", "stay_awake": true}')
    assert node.interval == 900 and node.stay_awake is True
    assert node.on_command(b"x", b'{"interval": null}') and node.interval == 60
    for bad in (b"not json", b"[1]", b"{}", b'{"interval": 1}', b'{"reboot": true}',
                b'{"read_now": 1}', b'{"stay_awake": "yes"}', b'{"interval": "1.5s"}',
                b'{"read_now": true, "format_flash": true}'):  # fmt: skip
        assert not node.on_command(b"x", bad), bad
    assert node.commands == 3 and node.command_errors == 9 and node.interval == 60


def test_hostile_commands_are_refused_with_a_bounded_quote():
    h = Harness()
    h.cycle()
    node = h.node
    deep = b"[" * 100000 + b"]" * 100000  # RecursionError in CPython's json, if parsed
    huge_key = b'{"' + b"k" * 262144 + b'": 1}'
    for bad in (deep, b"[" * 120 + b"]" * 120, huge_key, b"\xff\xfe{", b'{"x": 1}'):
        assert not node.on_command(b"x", bad)
        assert len(node.last_error) <= 300 and all(len(line) <= 300 for line in h.logs)
    assert node.command_errors == 5 and "262151 bytes, a command is at most 256" in h.logs[-3]
    assert h.logs[-1] == ('command rejected: unknown command "x"; expected read_now, stay_awake'
                          " or interval")  # fmt: skip
    # a long value inside the limit is quoted by its prefix only
    assert not node.on_command(b"x", b'{"interval": "' + b"9" * 200 + b'"}')
    assert '"' + "9" * 39 + "... (202 chars)" in node.last_error and len(node.last_error) < 300
    # what a user reads: the accepted forms, the text as sent (no b'...')
    assert not node.on_command(b"x", b'{"interval": "1 minute"}')
    assert '"15min"' in node.last_error and '"1 minute"' in node.last_error
    assert not node.on_command(b"x", b"read now")
    assert "not JSON" in node.last_error and '{"read_now": true}' in node.last_error
    assert node.on_command(b"x", b'{"read_now": true}')
    assert h.logs[-1] == 'command: {"read_now": true}'
    h.cycle()  # the session and the loop are unharmed
    assert h.mqtt.connected and h.mqtt.connects == 1


def test_a_retained_hostile_command_does_not_drop_the_session():
    h = Harness()
    h.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b"[" * 5000 + b"]" * 5000
    for _ in range(5):
        h.cycle()
        h.mqtt.poll()
    assert h.mqtt.connected and h.mqtt.connects == 1 and h.mqtt.failures == 0
    assert h.node.command_errors >= 1 and "5000" not in "".join(h.logs)


def test_retained_command_arrives_through_the_broker():
    h = Harness()
    h.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b'{"interval": 300}'
    h.cycle()  # connects and subscribes: the retained command is queued
    h.cycle()  # polled via check_msg in the loop; here the next cycle's publish path
    h.mqtt.poll()
    assert h.node.interval == 300


def test_loop_reads_now_on_command():
    h = Harness()
    t = FakeTicker(h.clock)
    h.cycle()
    h.node.on_command(b"x", b'{"read_now": true}')
    flag = loop.Flag()
    loop.run(h.node, t, flag, h.platform, max_cycles=1)
    assert h.node.cycles == 2


def test_a_tick_during_a_read_now_cycle_is_not_a_second_read():
    # The timer armed before fires while a read_now cycle runs (a long one: after an interval
    # change it announces again). Taking that tick would read again at once: two identical
    # states. The next read is an interval after this one.
    h = Harness()
    h.cycle()
    flag = loop.Flag()
    plain_cycle = h.node.cycle

    def cycle_with_a_tick():
        plain_cycle()
        flag.set()

    h.node.cycle = cycle_with_a_tick
    armed = []

    class Ticker:
        def arm(self, ms, callback):
            armed.append(ms)

    h.node.on_command(b"x", b'{"read_now": true}')
    turns = []
    loop.run(h.node, Ticker(), flag, h.platform, should_stop=lambda: turns.append(1) or
             len(turns) > 5, read_first=False)  # fmt: skip
    assert h.node.cycles == 2 and len(h.on("state")) == 2
    assert armed[-1] >= 59000  # an interval on, from the read_now cycle


def test_meter_asleep_backs_off_to_spare_its_battery():
    h = Harness()
    h.cycle()
    h.line.asleep = True
    tries = []
    for _ in range(30):
        before = h.line.requests
        h.cycle()
        tries.append(h.line.requests > before)
    # three tries in a row, then gaps of 1, 2, 4, 8, ... skipped cycles
    assert tries[:3] == [True, True, True]
    assert tries.count(True) <= 8, tries
    diag = json.loads(h.broker.retained[h.topic("diag")])
    assert diag["meter_reachable"] is False and diag["no_answer_streak"] >= 5
    h.line.asleep = False
    h.node.on_command(b"x", b'{"read_now": true}')  # read_now overrides the backoff
    h.cycle()
    assert h.node.meter_reachable is True and h.node.no_answer_streak == 0


def test_node_kind_constants_match_the_register_table():
    import node as node_module
    from kmp import registers

    assert (node_module._TOTAL, node_module._MEASURE) == (registers.TOTAL, registers.MEASURE)


# -- RAM: rare tasks leave no code behind ---------------------------------------------------------


def test_rare_tasks_drop_the_modules_they_loaded(tmp_path):
    import sys

    rare = ("announce", "discovery", "ha", "commands", "history", "buffer")
    for name in rare:  # other test modules may have imported them: start without
        sys.modules.pop(name, None)
    h = Harness(buffer_path=str(tmp_path / "buf"), capacity=16)
    h.cycle()  # discovery announced
    assert h.broker.retained[h.topic("units")]
    for name in ("announce", "discovery", "ha"):  # (the virtual meter keeps kmp.units)
        assert name not in sys.modules, name
    assert h.node.on_command(b"x", b'{"interval": "15min"}') and h.node.interval == 900
    assert "commands" not in sys.modules
    h.broker.up = False
    h.cycle()
    h.broker.up = True
    h.mqtt._next_try = None
    import history  # noqa: F401  (as when a longer backlog took more than one cycle)

    h.cycle()  # the backlog goes out on history
    assert len(h.on("history")) == 1 and h.buffer.pending() == 0
    assert "history" not in sys.modules and "buffer" not in sys.modules


def test_loop_after_a_startup_cycle_waits_an_interval():
    h = Harness()
    h.cycle()  # what board.start() does before handing over
    t = FakeTicker(h.clock)
    loop.run(h.node, t, loop.Flag(), h.platform, max_cycles=1, read_first=False)
    assert t.armed[0] == 60000 and h.node.cycles == 2


# -- Home Assistant discovery kept in step ---------------------------------------------------------

HA = "homeassistant/"


def configs_in(h, messages=None):
    """{topic: parsed config} of the discovery configs among messages (default: all)."""
    msgs = h.broker.messages if messages is None else messages
    return {t: json.loads(p) for t, p, _, _ in msgs if t.startswith(HA) and p}


def test_interval_command_announces_the_new_expire_after():
    h = Harness()
    h.cycle()
    e1 = "homeassistant/sensor/kmp2mqtt_246f280a1b2c_heat_energy/config"
    assert json.loads(h.broker.retained[e1])["expire_after"] == 180
    assert h.node.on_command(b"x", b'{"interval": 900}')
    h.cycle(advance_s=900)
    cfg = json.loads(h.broker.retained[e1])
    assert cfg["expire_after"] == 2700  # 3 x 15 min: not unavailable 12 of every 15 minutes
    problem = "homeassistant/binary_sensor/kmp2mqtt_246f280a1b2c_meter_problem/config"
    assert json.loads(h.broker.retained[problem])["expire_after"] == 2700 * 5  # diag every 5th
    n = len(h.broker.messages)
    assert h.node.on_command(b"x", b'{"interval": "15min", "read_now": true}')  # no change
    h.cycle(advance_s=900)
    assert configs_in(h, h.broker.messages[n:]) == {}
    assert h.node.on_command(b"x", b'{"interval": null}')  # back to update_interval
    h.cycle()
    assert json.loads(h.broker.retained[e1])["expire_after"] == 180


def test_home_assistant_birth_re_sends_discovery():
    h = Harness()
    h.cycle()
    assert "homeassistant/status" in h.clients[-1].subs
    h.broker.retained = {t: p for t, p in h.broker.retained.items() if not t.startswith(HA)}
    h.broker.deliver("homeassistant/status", b"offline")  # HA's last will: nothing to do
    h.mqtt.poll()
    n = len(h.broker.messages)
    h.cycle()
    assert configs_in(h, h.broker.messages[n:]) == {}
    h.broker.deliver("homeassistant/status", b"online")  # HA (re)started: its birth message
    h.mqtt.poll()
    assert h.node.commands == 0 and h.node.command_errors == 0 and h.node.errors == 0
    h.cycle()
    assert len(configs_in(h, h.broker.messages[n:])) == 15
    assert sum(t.startswith(HA) for t in h.broker.retained) == 15
    assert h.broker.retained[h.topic("units")]
    diag = json.loads(h.broker.retained[h.topic("diag")])
    assert diag["commands"] == 0 and diag["command_errors"] == 0


def test_no_birth_subscription_without_discovery():
    cfg = dict(BASE_CONFIG, mqtt={"host": "127.0.0.1", "discovery": False})
    h = Harness(cfg)
    h.cycle()
    assert h.clients[-1].subs == [h.topic("cmd")]
    assert not any(t.startswith(HA) for t in h.broker.retained)


def reboot(h, tmp_path, **edits):
    """The same flash and broker, a node started from an edited config.json."""
    cfg = dict(BASE_CONFIG, **edits)
    h2 = Harness(cfg, buffer_path=str(tmp_path / "buf"))
    h2.broker = h.broker
    h2.mqtt._make_client = h2.make_client
    return h2


def removed(h, since):
    return sorted(t for t, p, retain, _ in h.broker.messages[since:] if t.startswith(HA)
                  and p == b"" and retain)  # fmt: skip


def test_a_dropped_sensor_is_removed_from_home_assistant(tmp_path):
    h = Harness(buffer_path=str(tmp_path / "buf"))
    h.cycle()
    record = tmp_path / "buf.discovery"
    assert len(json.loads(record.read_text())) == 15
    sensors = {k: v for k, v in BASE_CONFIG["sensors"].items() if k != "volume"}
    h2 = reboot(h, tmp_path, sensors=sensors, custom=[])
    n = len(h.broker.messages)
    h2.cycle()
    assert removed(h2, n) == ["homeassistant/sensor/kmp2mqtt_246f280a1b2c_e8/config",
                              "homeassistant/sensor/kmp2mqtt_246f280a1b2c_volume/config"]  # fmt: skip
    assert h.broker.retained["homeassistant/sensor/kmp2mqtt_246f280a1b2c_volume/config"] == b""
    assert len(json.loads(record.read_text())) == 13
    # the same config again: nothing removed, the record not rewritten (flash wear)
    inode = record.stat().st_ino
    h3 = reboot(h2, tmp_path, sensors=sensors, custom=[])
    n = len(h.broker.messages)
    h3.cycle()
    assert removed(h3, n) == [] and len(configs_in(h3, h3.broker.messages[n:])) == 13
    assert record.stat().st_ino == inode


def test_a_sensor_not_read_yet_keeps_its_entity(tmp_path):
    h = Harness(buffer_path=str(tmp_path / "buf"))
    h.cycle()
    h2 = reboot(h, tmp_path)
    h2.line.omit = (0x59,)  # temp_diff does not answer after the restart: its unit is unknown
    n = len(h.broker.messages)
    h2.cycle()
    assert removed(h2, n) == []
    assert "homeassistant/sensor/kmp2mqtt_246f280a1b2c_temp_diff/config" in json.loads(
        (tmp_path / "buf.discovery").read_text())  # fmt: skip


def test_a_renamed_node_removes_its_old_entities(tmp_path):
    h = Harness(buffer_path=str(tmp_path / "buf"))
    h.cycle()
    old = sorted(t for t in h.broker.retained if t.startswith(HA))
    h2 = reboot(h, tmp_path, node_id="heat_cellar")
    n = len(h.broker.messages)
    h2.cycle()
    assert removed(h2, n) == old
    new = configs_in(h2, h2.broker.messages[n:])
    assert len(new) == 15 and all("/heat_cellar_" in t for t in new)
    assert sorted(json.loads((tmp_path / "buf.discovery").read_text())) == sorted(new)


def test_discovery_switched_off_removes_everything_once(tmp_path):
    h = Harness(buffer_path=str(tmp_path / "buf"))
    h.cycle()
    old = sorted(t for t in h.broker.retained if t.startswith(HA))
    off = {"host": "127.0.0.1", "discovery": False}
    h2 = reboot(h, tmp_path, mqtt=off)
    n = len(h.broker.messages)
    h2.cycle()
    assert removed(h2, n) == old and configs_in(h2, h2.broker.messages[n:]) == {}
    assert all(h.broker.retained[t] == b"" for t in old)
    assert h.broker.retained[h2.topic("units")]  # units go on without discovery
    assert json.loads((tmp_path / "buf.discovery").read_text()) == []  # forgotten
    h3 = reboot(h2, tmp_path, mqtt=off)
    n = len(h.broker.messages)
    h3.cycle()
    assert [m for m in h.broker.messages[n:] if m[0].startswith(HA)] == []


def test_configs_under_the_old_lower_case_topics_are_removed_once(tmp_path):
    # Earlier firmware put "Heat-1"'s configs on homeassistant/sensor/heat_1_.../config; HA
    # would keep those (same unique_id) and ignore the new topics.
    old = "homeassistant/sensor/heat_1_heat_energy/config"
    h = Harness(dict(BASE_CONFIG, node_id="Heat-1"), buffer_path=str(tmp_path / "buf"))
    h.broker.retained[old] = b'{"unique_id":"Heat-1_heat_energy"}'
    h.cycle()
    assert h.broker.retained[old] == b""
    assert len(removed(h, 0)) == 15  # every old-form topic, none of them today's
    topics = [m[0] for m in h.broker.messages]
    new_at = topics.index("homeassistant/sensor/Heat-1_heat_energy/config")
    assert topics.index(old) < new_at  # removed before the new config of that unique_id
    new = configs_in(h)
    assert "homeassistant/sensor/Heat-1_heat_energy/config" in new and len(new) == 15
    h2 = reboot(h, tmp_path, node_id="Heat-1")
    n = len(h.broker.messages)
    h2.cycle()
    assert removed(h2, n) == []  # recorded: once only


@pytest.mark.parametrize("ack_ms", [1000, 3000])
def test_a_broker_that_acknowledges_slowly_does_not_hold_up_the_reads(tmp_path, ack_ms):
    # Every CONNACK/PUBACK/SUBACK late, a 5 s interval: MQTT gets 3/4 of a cycle, the reading
    # first, and what does not fit (discovery, history, diag) waits for the next one, resumed
    # where it stopped. No reading is lost, and the reads stay on their 5 s.
    from timefmt import iso_utc

    cfg = dict(BASE_CONFIG)
    cfg["update_interval"] = 5
    h = Harness(cfg, buffer_path=str(tmp_path / "buf"))
    h.broker.ack_clock, h.broker.ack_delay_ms = h.clock, ack_ms
    seen = []
    h.node.log = seen.append
    durations, read = [], []
    for _ in range(40):
        t0 = h.clock.now
        h.meter.advance(5)
        h.node.cycle()
        read.append(h.node.last_state)
        durations.append(h.clock.now - t0)
        h.clock.now = max(h.clock.now, t0 + 5000)  # the next tick
    # the first cycle connects (CONNACK, online, two SUBACKs); every later one fits
    assert max(durations[1:]) <= 5000, durations
    assert any("the broker is slow" in line for line in seen)
    assert h.mqtt.connects == 1 and h.mqtt.failures == 0
    states = [json.loads(p) for p in h.on("state")]
    configs = [m for m in h.broker.messages if m[0].startswith("homeassistant/")]
    if ack_ms == 3000:
        # one QoS 1 message fits a cycle: the reading's, every cycle; discovery waits. The
        # first cycle's connect took 12 s: its reading waits in the buffer for history.
        assert [m["time"] for m in states] == [iso_utc(w) for _, w in read[1:]]
        assert h.buffer.pending() == 1 and not configs
        return
    # discovery went out over several cycles, each config once (resumed, not restarted)
    assert len({m[0] for m in configs}) == 15 and len(configs) == 15
    assert h.node.discovery_sent and h.topic("units") in h.broker.retained
    # every reading on state or history, once
    got = states + [json.loads(p) for p in h.on("history")]
    times = [m["time"] for m in got]
    assert sorted(times) == sorted(iso_utc(w) for _, w in read) and len(set(times)) == len(read)


def test_a_slow_cycle_does_not_stretch_the_interval():
    cfg = dict(BASE_CONFIG)
    cfg["update_interval"] = 10
    h = Harness(cfg)
    h.broker.ack_clock, h.broker.ack_delay_ms = h.clock, 1000  # every cycle takes seconds
    ticker = FakeTicker(h.clock)
    loop.run(h.node, ticker, loop.Flag(), h.platform, max_cycles=4)
    # the next read is 10 s after this one started: the cycle's own time is taken off
    assert len(ticker.armed) == 3 and all(1000 <= ms < 10000 for ms in ticker.armed), ticker.armed
