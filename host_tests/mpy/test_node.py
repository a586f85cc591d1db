# The node's loop logic under real MicroPython 1.29: fake UART (virtual MULTICAL), fake broker,
# fake clock. Same checks as host_tests/test_node.py, in the runtime the ESP32 runs.

import json

import loop
from mptest import run
from node_harness import BASE_CONFIG, Harness

SEVEN = ("heat_energy", "power", "temp1", "temp2", "temp_diff", "flow", "volume")


def _state(h):
    raw = h.broker.retained[h.topic("state")]
    return raw.decode(), json.loads(raw)


def test_cycle_publishes_exact_values():
    h = Harness()
    h.cycle()
    assert h.broker.retained[h.topic("status")] == b"online"
    text, state = _state(h)
    assert ('"heat_energy":%s' % h.meter.truth_text(0x3C)) in text
    assert ('"temp_diff":%s' % h.meter.truth_text(0x59)) in text
    assert ('"volume":%s' % h.meter.truth_text(0x44)) in text
    assert state["time"].startswith("2026-11-23T12:01")
    n = 0
    for t in h.broker.retained:
        if t.startswith("homeassistant/"):
            cfg = json.loads(h.broker.retained[t])
            diagnostic = cfg.get("entity_category") == "diagnostic"
            assert "object_id" not in cfg and cfg["expire_after"] == (900 if diagnostic else 180)
            n += 1
    assert n == 15


def test_null_guard_and_asleep():
    h = Harness(omit=(0x59,))
    h.cycle()
    _, state = _state(h)
    assert state["temp_diff"] is None
    h.meter._energy //= 2
    h.cycle()
    _, state = _state(h)
    assert state["heat_energy"] is None
    h.line.asleep = True
    h.cycle()
    _, state = _state(h)
    for k in SEVEN:
        assert state[k] is None
    assert json.loads(h.broker.retained[h.topic("diag")])["meter_reachable"] is False


def test_broker_outage_and_crash_survived():
    h = Harness()
    h.cycle()
    h.broker.up = False
    h.cycle()
    assert not h.mqtt.connected and h.mqtt.failures == 1

    def boom(rids):
        raise MemoryError("heap")

    h.link.read = boom
    h.cycle()
    assert h.node.errors == 1
    del h.link.read
    h.broker.up = True
    for _ in range(10):
        h.cycle(120)
    assert h.mqtt.connected


class _Ticker:
    def __init__(self):
        self.armed = []

    def arm(self, ms, callback):
        self.armed.append(ms)
        callback()


def test_loop_runs_and_rearms():
    cfg = dict(BASE_CONFIG)
    cfg["update_interval"] = 300
    h = Harness(cfg)
    t = _Ticker()
    loop.run(h.node, t, loop.Flag(), h.platform, max_cycles=5)
    # an interval after each read started: the cycle's own time is taken off
    assert h.node.cycles == 5 and len(t.armed) == 4
    for ms in t.armed:
        assert 290000 <= ms < 300000, t.armed
    assert h.platform.feeds >= 5


def test_a_tick_during_a_read_now_cycle_is_dropped():
    # the old timer fires while a read_now cycle runs: no second read right after it
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

    def enough():
        turns.append(1)
        return len(turns) > 5

    loop.run(h.node, Ticker(), flag, h.platform, should_stop=enough, read_first=False)
    assert h.node.cycles == 2, h.node.cycles
    assert armed[-1] >= 59000, armed


def test_outage_goes_to_history_in_order():
    import os

    try:
        os.mkdir("/tmp")
    except OSError:
        pass
    h = Harness(buffer_path="/tmp/node_buf", capacity=16)
    h.cycle()
    h.broker.up = False
    read = []
    for _ in range(20):
        h.cycle()
        read.append(h.node.last_state)
    h.broker.up = True
    h.mqtt._next_try = None
    h.cycle()
    h.cycle()
    history = [json.loads(p) for p in h.on("history")]
    assert [m["seq"] for m in history] == list(range(5, 21)), [m["seq"] for m in history]
    assert h.buffer.dropped == 4 and h.buffer.pending() == 0
    text = h.on("history")[0].decode()
    assert ('"heat_energy":%s' % read[4][0]["heat_energy"]) in text


def test_rare_tasks_drop_the_modules_they_loaded():
    import sys

    h = Harness()
    h.cycle()
    for name in ("announce", "discovery", "ha"):  # (the virtual meter keeps kmp.units)
        assert name not in sys.modules, name
    assert h.node.on_command(b"t", b'{"read_now": true}') and h.node.read_requested
    assert "commands" not in sys.modules


def test_commands_and_meter_backoff():
    h = Harness()
    h.cycle()
    assert h.node.on_command(b"t", b'{"interval": "15min"}') and h.node.interval == 900
    assert not h.node.on_command(b"t", b'{"interval": 2}')
    assert not h.node.on_command(b"t", b'{"shutdown": true}')
    h.line.asleep = True
    tries = 0
    for _ in range(20):
        before = h.line.requests
        h.cycle()
        tries += h.line.requests > before
    assert tries <= 7 and h.node.no_answer_streak >= 4


def test_probe_prints_values_and_counters():
    import probe
    from fake_clock import FakeClock
    from fake_uart import FakeUart
    from virtual_meter import FaultyLine, VirtualMeter

    h = Harness()
    clock = FakeClock()
    meter = VirtualMeter(seed=2)
    uart = FakeUart(clock, FaultyLine(meter, seed=2, echo=True), byte_ms=9.17)
    lines = []
    assert probe.run(uart, h.cfg, lines.append, clock) == 8
    text = "\n".join(lines)
    assert "serial 67051653" in text and "software K6" in text
    assert meter.truth_text(0x3C) in text and "link: 3 requests, 3 responses" in text
    meter2 = VirtualMeter(seed=2)
    uart2 = FakeUart(clock, FaultyLine(meter2, seed=2, asleep=True))
    lines = []
    assert probe.run(uart2, h.cfg, lines.append, clock) == 0
    assert "no answer" in lines[-1]


def _configs(h, since):
    out = {}
    for t, p, _, _ in h.broker.messages[since:]:
        if t.startswith("homeassistant/"):
            out[t] = json.loads(p) if p else None
    return out


def test_interval_command_and_home_assistant_birth_announce_again():
    h = Harness()
    h.cycle()
    e1 = "homeassistant/sensor/kmp2mqtt_246f280a1b2c_heat_energy/config"
    assert json.loads(h.broker.retained[e1])["expire_after"] == 180
    assert h.node.on_command(b"t", b'{"interval": 900}')
    n = len(h.broker.messages)
    h.cycle(900)
    assert _configs(h, n)[e1]["expire_after"] == 2700
    assert "homeassistant/status" in h.clients[-1].subs
    n = len(h.broker.messages)
    h.broker.deliver("homeassistant/status", b"online")
    h.mqtt.poll()
    assert h.node.commands == 1 and h.node.command_errors == 0
    h.cycle(900)
    assert len(_configs(h, n)) == 15


def test_removed_sensors_and_renames_leave_no_ghosts():
    import os

    try:
        os.mkdir("/tmp")
    except OSError:
        pass
    for name in ("/tmp/ghost_buf.discovery", "/tmp/ghost_buf.discovery.tmp"):
        try:
            os.remove(name)
        except OSError:
            pass
    h = Harness(buffer_path="/tmp/ghost_buf")
    h.cycle()
    with open("/tmp/ghost_buf.discovery") as f:
        assert len(json.load(f)) == 15
    cfg = dict(BASE_CONFIG)
    cfg["node_id"] = "heat_cellar"
    cfg["custom"] = []
    h2 = Harness(cfg, buffer_path="/tmp/ghost_buf")
    h2.broker = h.broker
    h2.mqtt._make_client = h2.make_client
    n = len(h.broker.messages)
    h2.cycle()
    sent = _configs(h2, n)
    gone = [t for t in sent if sent[t] is None]
    assert len(gone) == 15 and all("kmp2mqtt_246f280a1b2c_" in t for t in gone), gone
    assert len([t for t in sent if sent[t] is not None]) == 14
    with open("/tmp/ghost_buf.discovery") as f:
        assert sorted(json.load(f)) == sorted(t for t in sent if sent[t] is not None)


def test_silent_meter_from_the_first_boot_is_reported():
    h = Harness(asleep=True)
    h.cycle()
    r = h.broker.retained
    assert h.node.node_id == "kmp2mqtt_246f280a1b2c" and r[h.topic("status")] == b"online"
    assert json.loads(r[h.topic("diag")])["meter_reachable"] is False
    configs = [t for t in r if t.startswith("homeassistant/")]
    assert len(configs) == 7 and h.topic("units") not in r
    h.line.asleep = False
    h.cycle()
    assert len([t for t in r if t.startswith("homeassistant/")]) == 15
    assert json.loads(r[h.topic("state")])["heat_energy"] is not None


def test_uart_errors_and_hostile_commands():
    h = Harness()
    h.cycle()
    write = h.uart.write

    def broken(buf):
        raise OSError(5)

    h.uart.write = broken
    h.cycle()
    diag = json.loads(h.broker.retained[h.topic("diag")])
    assert diag["meter_reachable"] is False and diag["link"]["port_errors"] == 1
    h.uart.write = write
    h.cycle()
    assert json.loads(h.broker.retained[h.topic("diag")])["meter_reachable"] is True
    for bad in (b"[" * 3000 + b"]" * 3000, b'{"' + b"k" * 5000 + b'": 1}', b"[" * 100 + b"]" * 100,
                b"\xff{", b'{"interval": "1 minute"}'):  # fmt: skip
        assert not h.node.on_command(b"x", bad)
        assert len(h.node.last_error) < 300
    assert '"15min"' in h.node.last_error and h.node.command_errors == 5
    assert h.node.on_command(b"x", b'{"read_now": true}')


def test_a_swapped_meter_is_noticed_after_a_silence():
    h = Harness()
    h.cycle()
    h.line.asleep = True
    h.cycle()
    h.meter.serial = 12345678
    h.meter._energy //= 10
    h.line.asleep = False
    h.cycle()
    assert h.node.serial == 12345678 and h.node.meter_swaps == 1
    assert json.loads(h.broker.retained[h.topic("state")])["heat_energy"] is not None


run(globals(), "node")
