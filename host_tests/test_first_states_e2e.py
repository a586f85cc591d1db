# The states a new user meets first, end to end: the node as a user runs it (`main.py --config`),
# the virtual MULTICAL on a real pty (paced 1200 baud 8N2, echoing like an IR head), a real
# mosquitto on 127.0.0.1 and a subscriber checking what arrives. Faults are injected where they
# happen: the meter's optical eye, the serial device itself (closed and removed), the broker.

import json
import os
import time

import pytest

import ha_rules
from broker_fixtures import Subscriber, mosquitto_broker, publish_retained  # noqa: F401
from host.runtime import host_board_id
from kmpsim import Simulator
from node_process import NodeProcess

SEVEN = ("heat_energy", "power", "temp1", "temp2", "temp_diff", "flow", "volume")


def write_config(tmp_path, brk, device, interval=5, node_id=""):
    cfg = {
        "node_id": node_id,  # "" as in the shipped config.json: the board's own id
        "mqtt": {"host": brk.host, "port": brk.port},
        "meter": {"port": str(device), "timeout_ms": 1000, "retries": 1},
        "update_interval": interval,
        "sensors": {k: {"name": k.replace("_", " ").title()} for k in SEVEN},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def configs(sub, node_id):
    out = {}
    for m in sub.messages:
        if m.topic.startswith("homeassistant/") and m.payload:
            out[m.topic] = json.loads(m.payload)
    return {t: c for t, c in out.items() if c["device"]["identifiers"] == [node_id]}


def last_json(sub, topic):
    return json.loads(sub.on(topic)[-1].payload)


def wait_good_state(sub, topic, timeout=30):
    """Until a state with a heat energy reading arrives."""
    sub._wait(lambda: any(json.loads(m.payload).get("heat_energy") is not None
                          for m in sub.on(topic)), timeout, "a good state")  # fmt: skip


def test_meter_silent_at_first_boot_is_reported_then_joins_the_same_device(
    mosquitto_broker, tmp_path
):
    with Simulator(echo=True, time_scale=0, asleep=True) as sim:
        cfg = write_config(tmp_path, mosquitto_broker, sim.device)
        node_id = "kmp2mqtt_" + host_board_id(str(cfg))
        base = "kmp2mqtt/%s/" % node_id
        with Subscriber(mosquitto_broker, ["kmp2mqtt/#", "homeassistant/#"]) as sub:
            node = NodeProcess(cfg, tmp_path)
            try:
                sub.wait_for(base + "status", timeout=30, payload=b"online")
                diag = json.loads(sub.wait_for(base + "diag", timeout=20).payload)
                assert diag["meter_reachable"] is False
                assert "no answer from the meter" in diag["last_error"]
                sub._wait(lambda: len(configs(sub, node_id)) == 7, 10, "7 diagnostic configs")
                first = configs(sub, node_id)
                problem = first["homeassistant/binary_sensor/%s_meter_problem/config" % node_id]
                assert ha_rules.render(problem["value_template"], diag) == "ON"
                for topic, c in first.items():
                    assert c["entity_category"] == "diagnostic"
                    assert ha_rules.problems(c, topic.split("/")[1]) == [], (topic, c)
                assert not sub.on(base + "units")
                # The user aligns the head: the same node and device get the sensors.
                with sim.lock:
                    sim.line.asleep = False
                wait_good_state(sub, base + "state")
                sub._wait(lambda: len(configs(sub, node_id)) == 7 + 7, 10, "14 configs")
                sub._wait(lambda: last_json(sub, base + "diag")["meter_reachable"], 40,
                          "diag: meter reachable")  # fmt: skip
            except AssertionError:
                print(node.text())
                raise
            finally:
                assert node.stop() == 0, node.text()
    every = configs(sub, node_id)
    assert all(c["device"]["serial_number"] == str(sim.meter.serial) for t, c in every.items()
               if "/sensor/" in t and "_heat_energy/" in t)  # fmt: skip
    assert {m.topic.split("/")[1] for m in sub.messages if m.topic.startswith("kmp2mqtt/")} == {
        node_id
    }  # one node, one device: nothing under another id
    log = node.text()
    assert "Traceback" not in log and "AssertionError" not in log


def test_usb_head_unplugged_and_plugged_back(mosquitto_broker, tmp_path):
    # The node reads /dev/ttyUSB0 as udev makes it: a link to the device that goes away when
    # the head is unplugged and comes back, at the same path, for a new device.
    link = tmp_path / "ttyUSB0"
    cfg = write_config(tmp_path, mosquitto_broker, link, node_id="usb")
    base = "kmp2mqtt/usb/"
    with Subscriber(mosquitto_broker, ["kmp2mqtt/usb/#"]) as sub:
        # Started with the head unplugged: it runs, and says so.
        node = NodeProcess(cfg, tmp_path)
        try:
            sub.wait_for(base + "status", timeout=30, payload=b"online")
            sub._wait(lambda: sub.on(base + "diag"), 20, "diag")
            diag = last_json(sub, base + "diag")
            assert diag["meter_reachable"] is False and "cannot open" in diag["last_error"]
            with Simulator(echo=True, time_scale=0) as sim:
                os.symlink(sim.device, link)  # plugged in
                wait_good_state(sub, base + "state")
                good = len(sub.on(base + "state"))
            os.unlink(link)  # unplugged: the device is closed and gone
            t0 = time.monotonic()
            sub._wait(lambda: not last_json(sub, base + "diag")["meter_reachable"], 20,
                      "diag: meter not reachable")  # fmt: skip
            diag = last_json(sub, base + "diag")
            assert "serial port" in diag["last_error"] or "cannot open" in diag["last_error"]
            sub._wait(lambda: len(sub.on(base + "state")) > good
                      and last_json(sub, base + "state")["heat_energy"] is None, 20,
                      "a state of nulls")  # fmt: skip
            assert time.monotonic() - t0 < 20
            with Simulator(echo=True, time_scale=0) as sim2:
                os.symlink(sim2.device, link)  # plugged back: another pty, the same path
                t1 = time.monotonic()
                sub._wait(lambda: last_json(sub, base + "state")["heat_energy"] is not None, 45,
                          "a good state after the head came back")  # fmt: skip
                back_s = time.monotonic() - t1
                sub._wait(lambda: last_json(sub, base + "diag")["meter_reachable"], 30,
                          "diag: meter reachable again")  # fmt: skip
        except AssertionError:
            print(node.text())
            raise
        finally:
            rc = node.stop()
    assert rc == 0, node.text()
    assert back_s < 15  # within a few 5 s intervals, not backed off towards an hour
    log = node.text()
    assert "Traceback" not in log and "cycle: OSError" not in log
    assert "retrying every cycle" in log


@pytest.mark.parametrize("hostile", ["nested", "huge"])
def test_retained_hostile_command_leaves_the_session_alone(mosquitto_broker, tmp_path, hostile):
    payload = b"[" * 200000 + b"]" * 200000 if hostile == "nested" else (
        b'{"' + b"k" * 262144 + b'": true}')  # fmt: skip
    publish_retained(mosquitto_broker, "kmp2mqtt/h/cmd", payload)
    with Simulator(echo=True, time_scale=0) as sim:
        cfg = write_config(tmp_path, mosquitto_broker, sim.device, node_id="h")
        with Subscriber(mosquitto_broker, ["kmp2mqtt/h/status", "kmp2mqtt/h/diag"]) as sub:
            node = NodeProcess(cfg, tmp_path)
            try:
                sub.wait_for("kmp2mqtt/h/status", timeout=30, payload=b"online")
                sub._wait(lambda: any(json.loads(m.payload)["command_errors"] >= 1
                                      for m in sub.on("kmp2mqtt/h/diag")), 20, "the rejection")  # fmt: skip
                time.sleep(12)  # two more cycles: a session drop would show as offline/online
            finally:
                assert node.stop() == 0, node.text()
    statuses = [m.payload for m in sub.on("kmp2mqtt/h/status")]
    assert statuses == [b"online", b"offline"], statuses  # the clean stop's offline only
    diags = [json.loads(m.payload) for m in sub.on("kmp2mqtt/h/diag")]
    assert diags[-1]["mqtt_connects"] == 1 and diags[-1]["mqtt_failures"] == 0
    assert max(len(m.payload) for m in sub.on("kmp2mqtt/h/diag")) < 4000
    assert "a command is at most 256" in diags[-1]["last_error"]
    log = node.text()
    assert max(len(line) for line in log.splitlines()) < 400 and "Traceback" not in log


def test_a_broker_that_acknowledges_slowly_does_not_hold_up_the_reads(mosquitto_broker, tmp_path):
    # Everything mosquitto sends reaches the node a second late (CONNACK, every PUBACK and
    # SUBACK): the node still reads every 5 s, and every reading arrives, once, in order.
    from collections import namedtuple

    from slow_proxy import SlowProxy

    Brk = namedtuple("Brk", "host port")
    with (
        SlowProxy(mosquitto_broker.port, delay_s=1.0) as proxy,
        Simulator(echo=True, time_scale=1.0) as sim,
    ):
        cfg = write_config(tmp_path, Brk("127.0.0.1", proxy.port), sim.device, node_id="slow")
        with Subscriber(mosquitto_broker, ["kmp2mqtt/slow/#", "homeassistant/#"]) as sub:
            node = NodeProcess(cfg, tmp_path)
            try:
                sub.wait_for("kmp2mqtt/slow/status", timeout=30, payload=b"online")
                t0, r0 = time.monotonic(), sim.counters()["requests"]
                time.sleep(40)
                reads = sim.counters()["requests"] - r0  # one GetRegister request a reading
                elapsed = time.monotonic() - t0
                sub._wait(lambda: len(configs(sub, "slow")) == 7 + 7, 60, "14 configs")
            except AssertionError:
                print(node.text())
                raise
            finally:
                assert node.stop() == 0, node.text()
    assert proxy.connections == 1  # slow is not dead: the session was kept
    assert reads >= elapsed / 5 - 2, (reads, elapsed, node.text())  # on time, give or take
    got = [json.loads(m.payload) for m in sub.on("kmp2mqtt/slow/state")]
    got += [json.loads(m.payload) for m in sub.on("kmp2mqtt/slow/history")]
    times = [m["time"] for m in got]
    assert len(times) == len(set(times))  # none twice
    assert "the broker is slow" in node.text()
