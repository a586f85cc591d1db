# End to end on CPython: the virtual MULTICAL on a real pty (paced 1200 baud 8N2, echoing like
# an IR head), a real broker on 127.0.0.1 (amqtt in-process, and mosquitto when installed), the
# node as a user runs it (`main.py --config FILE`), and a subscriber checking what arrives.

import json
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import ha_rules
from broker_fixtures import Subscriber, amqtt_broker, broker, mosquitto_broker  # noqa: F401
from kmpsim import Simulator
from node_process import NodeProcess

ROOT = Path(__file__).resolve().parent.parent
SEVEN = ("heat_energy", "power", "temp1", "temp2", "temp_diff", "flow", "volume")
RIDS = {"heat_energy": 0x3C, "power": 0x50, "temp1": 0x56, "temp2": 0x57, "temp_diff": 0x59,
        "flow": 0x4A, "volume": 0x44, "e8": 0x61}  # fmt: skip
KINDS = {"heat_energy": "total", "volume": "total", "e8": "total"}


def write_config(tmp_path, brk, device, interval=5):
    cfg = {
        "node_id": "e2e",
        "mqtt": {"host": brk.host, "port": brk.port},
        "meter": {"port": device, "timeout_ms": 1600, "retries": 2},
        "update_interval": interval,
        "sensors": {k: {"name": k.replace("_", " ").title()} for k in SEVEN},
        "custom": [{"name": "E8", "command": "0x0061"}],
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def discovery(sub):
    return [m for m in sub.messages if m.topic.startswith("homeassistant/")]


@pytest.fixture
def sim():
    with Simulator(echo=True, stray_zeros=0.2, time_scale=0, omit=(0x57,)) as s:
        yield s


def test_node_end_to_end(broker, sim, tmp_path):
    cfg = write_config(tmp_path, broker, sim.device)
    with Subscriber(broker, ["kmp2mqtt/e2e/#", "homeassistant/#"]) as sub:
        node = NodeProcess(cfg, tmp_path)
        try:
            sub.wait_for("kmp2mqtt/e2e/status", timeout=30, payload=b"online")
            sub.wait_for("kmp2mqtt/e2e/state", timeout=30)
            units_msg = sub.wait_for("kmp2mqtt/e2e/units", timeout=5)
            diag_msg = sub.wait_for("kmp2mqtt/e2e/diag", timeout=5)
            # A subscriber that comes later (Home Assistant after a restart) gets it all retained.
            with Subscriber(broker, ["kmp2mqtt/e2e/#", "homeassistant/#"]) as late:
                state_msg = late.wait_for("kmp2mqtt/e2e/state", timeout=5)
                assert late.wait_for("kmp2mqtt/e2e/status", timeout=5).payload == b"online"
                late._wait(lambda: len(discovery(late)) >= 14, 5, "14 discovery configs")
                configs = discovery(late)
        except AssertionError:
            print(node.text())
            raise
        finally:
            rc = node.stop()
        assert rc == 0, node.text()
    text = state_msg.payload.decode()
    state = json.loads(text, parse_float=Decimal)
    assert state_msg.retain and all(m.retain for m in configs)
    # exact values, as the meter holds them (frozen: time_scale=0)
    for sid, rid in RIDS.items():
        if rid == 0x57:
            assert state[sid] is None and '"temp2":null' in text  # omitted by the meter
        else:
            assert '"%s":%s' % (sid, sim.truth_text(rid)) in text, (sid, text)
    assert state["time"].endswith("Z")
    units = json.loads(units_msg.payload)
    assert units["heat_energy"]["unit"] == "GJ" and units["flow"]["unit"] == "L/h"
    diag = json.loads(diag_msg.payload)
    assert diag["meter_reachable"] is True and diag["link"]["responses"] >= 3
    # discovery: every config valid for Home Assistant, retained
    # 7 sensors + E8 + 7 diagnostics, less temp2: the meter omits it, so its unit is unknown
    # and it is not announced (it would be once the meter sends it)
    assert len({m.topic for m in configs}) == 8 + 7 - 1
    for m in configs:
        assert m.retain
        cfg_obj = json.loads(m.payload)
        component = m.topic.split("/")[1]
        sid = cfg_obj["unique_id"][len("e2e_") :]
        kind = None if cfg_obj.get("entity_category") else KINDS.get(sid, "measure")
        assert ha_rules.problems(cfg_obj, component, kind) == [], (m.topic, cfg_obj)
    # a clean stop says offline itself
    assert sub.on("kmp2mqtt/e2e/status")[-1].payload == b"offline"


def test_last_will_when_the_node_is_killed(amqtt_broker, sim, tmp_path):
    cfg = write_config(tmp_path, amqtt_broker, sim.device)
    with Subscriber(amqtt_broker, ["kmp2mqtt/e2e/status", "kmp2mqtt/e2e/state"]) as sub:
        node = NodeProcess(cfg, tmp_path)
        try:
            sub.wait_for("kmp2mqtt/e2e/state", timeout=30)
        finally:
            node.stop(signal.SIGKILL)  # no DISCONNECT: the broker must publish the will
        sub.wait_for("kmp2mqtt/e2e/status", timeout=10, payload=b"offline")


def test_totals_guard_end_to_end(amqtt_broker, tmp_path):
    with Simulator(time_scale=0, pace=False) as s:
        cfg = write_config(tmp_path, amqtt_broker, s.device, interval=5)
        with Subscriber(amqtt_broker, ["kmp2mqtt/e2e/state"]) as sub:
            node = NodeProcess(cfg, tmp_path)
            try:
                first = sub.wait_for("kmp2mqtt/e2e/state", timeout=30)
                with s.lock:
                    s.meter._energy //= 2  # a bogus lower reading from now on
                before = len(sub.on("kmp2mqtt/e2e/state"))
                sub._wait(lambda: len(sub.on("kmp2mqtt/e2e/state")) >= before + 1, 20, "state")
                held = json.loads(sub.on("kmp2mqtt/e2e/state")[-1].payload)
            finally:
                node.stop()
    assert json.loads(first.payload)["heat_energy"] is not None
    assert held["heat_energy"] is None and held["volume"] is not None


def test_bad_config_is_reported_with_its_path(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"mqtt": {"host": "127.0.0.1", "port": "1883x"},
                                "meter": {"port": "/dev/null"}, "sensors": {"heat_enrgy": {}}}))  # fmt: skip
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(path)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2
    assert 'mqtt.port: expected an integer 1..65535, got "1883x"' in r.stderr
    assert "sensors.heat_enrgy: unknown sensor" in r.stderr
    assert "password" not in r.stderr or "***" not in r.stderr
