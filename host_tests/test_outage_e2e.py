# Nothing lost, against real brokers: the node (`main.py --config`) keeps reading while the
# broker is down, and every reading taken meanwhile arrives on the history topic, in order,
# none missing; when the buffer overflows exactly the oldest are dropped and counted.

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from broker_fixtures import Subscriber, free_port
from buffer import Reading, ReadingBuffer
from host.broker import HOST, AmqttBroker, MosquittoBroker
from kmpsim import Simulator

ROOT = Path(__file__).resolve().parent.parent
INTERVAL = 5


class Broker:
    """A broker that can be stopped and started again on the same port."""

    def __init__(self, kind, tmp_path):
        if kind == "mosquitto" and not MosquittoBroker.available():
            pytest.skip("mosquitto not installed")
        self.name = kind
        self.host = HOST
        self.port = free_port()
        self._broker = None

    def start(self):
        kind = AmqttBroker if self.name == "amqtt" else MosquittoBroker
        self._broker = kind(self.port).start()
        return self

    def stop(self):
        if self._broker is not None:
            self._broker.stop()
            self._broker = None


def start_node(tmp_path, brk, device, capacity=672):
    cfg = {
        "node_id": "outage",
        "mqtt": {"host": brk.host, "port": brk.port, "discovery": False},
        "meter": {"port": device},
        "update_interval": INTERVAL,
        "sensors": {"heat_energy": {}, "volume": {}, "flow": {}},
        "buffer": {"capacity": capacity, "path": "buffer"},
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    log = open(tmp_path / "node.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "--config", str(tmp_path / "config.json")],
        stdout=log, stderr=log,
    )  # fmt: skip
    return proc, log


def stop_node(proc, log):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.close()


def payloads(sub, leaf):
    return [json.loads(m.payload) for m in sub.on("kmp2mqtt/outage/" + leaf)]


@pytest.mark.parametrize("kind", ["amqtt", "mosquitto"])
def test_broker_outage_every_reading_arrives_on_history(kind, tmp_path):
    brk = Broker(kind, tmp_path).start()
    with Simulator(time_scale=1, pace=False) as sim:
        proc, log = start_node(tmp_path, brk, sim.device)
        try:
            with Subscriber(brk, ["kmp2mqtt/outage/#"]) as before:
                before.wait_for("kmp2mqtt/outage/state", timeout=30)
                live_before = payloads(before, "state")
            brk.stop()
            time.sleep(4 * INTERVAL)  # several cycles without a broker
            brk.start()
            with Subscriber(brk, ["kmp2mqtt/outage/#"]) as after:
                after.wait_for("kmp2mqtt/outage/history", timeout=60)
                # wait until the backlog is delivered (diag reports the buffer empty)
                after._wait(
                    lambda: any(d["buffered"] == 0 and d["history_sent"] > 0
                                for d in payloads(after, "diag")),
                    60, "an empty buffer",
                )  # fmt: skip
                history = payloads(after, "history")
                live_after = payloads(after, "state")
                diag = payloads(after, "diag")[-1]
        finally:
            stop_node(proc, log)
            brk.stop()
    seqs = [m["seq"] for m in history]
    assert len(seqs) >= 3 and seqs == list(range(1, len(seqs) + 1)), seqs  # in order, no gap
    times = [m["time"] for m in history]
    assert times == sorted(times)
    assert all(m["heat_energy"] is not None and m["volume"] is not None for m in history)
    # every reading taken reached the broker once: live on state or later on history
    assert diag["buffer_dropped"] == 0 and diag["lost"] == 0
    assert len(live_before) + len(history) + len(live_after) >= diag["cycles"] - 1


def test_overflow_drops_exactly_the_oldest(tmp_path):
    # 14 readings left over from an earlier outage; the broker is down from the start, so the
    # node adds more and the 16-reading buffer has to drop the oldest.
    old = ReadingBuffer(str(tmp_path / "buffer"), 16)
    for i in range(14):
        old.append(Reading({"heat_energy": "1.%03d" % i, "volume": None, "flow": "5"},
                           1795435200 + 60 * i, i))  # fmt: skip
    del old
    brk = Broker("amqtt", tmp_path)
    with Simulator(time_scale=0, pace=False) as sim:
        proc, log = start_node(tmp_path, brk, sim.device, capacity=16)
        try:
            time.sleep(4 * INTERVAL + 2)  # 4 or 5 readings: 18 or 19 for 16 places
            brk.start()
            with Subscriber(brk, ["kmp2mqtt/outage/#"]) as sub:
                sub._wait(
                    lambda: any(d["buffered"] == 0 and d["history_sent"] > 0
                                for d in payloads(sub, "diag")),
                    60, "an empty buffer",
                )  # fmt: skip
                history = payloads(sub, "history")
                diag = payloads(sub, "diag")[-1]
        finally:
            stop_node(proc, log)
            brk.stop()
    seqs = [m["seq"] for m in history]
    dropped = diag["buffer_dropped"]
    assert dropped >= 2
    assert seqs == list(range(dropped + 1, seqs[-1] + 1))  # exactly the oldest went
    # the first delivered of the old readings is the one right after the dropped ones
    assert history[0]["heat_energy"] == float("1.%03d" % dropped)
