#!/usr/bin/env python3
"""make demo: the whole chain on one machine, no hardware.

Starts an embedded MQTT broker on 127.0.0.1 (amqtt; or uses MQTT_HOST[:MQTT_PORT] when given),
the virtual MULTICAL 403 on a pseudo-terminal (echoing like an IR head, paced at 1200 baud,
values moving 60x faster than life), and the kmp2mqtt node itself (`main.py --config ...`), then
shows the readings arriving in a live table until Ctrl-C.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(_ROOT, "lib"), os.path.join(_ROOT, "tools"), _ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

SENSORS = ("heat_energy", "power", "temp1", "temp2", "temp_diff", "flow", "volume")
LABELS = {
    "heat_energy": "Heat energy",
    "power": "Power",
    "temp1": "Flow temperature T1",
    "temp2": "Return temperature T2",
    "temp_diff": "Temperature difference",
    "flow": "Flow",
    "volume": "Volume",
    "e8": "E8 (m³·T1)",
}


def demo_config(broker_host, broker_port, device, interval):
    return {
        "node_id": "demo",
        "wifi": {"ssid": "", "password": ""},
        "mqtt": {
            "host": broker_host,
            "port": broker_port,
            "user": "",
            "password": "",
            "tls": False,
            "base_topic": "kmp2mqtt",
            "discovery": True,
            "discovery_prefix": "homeassistant",
        },  # fmt: skip
        "meter": {
            "uart": 1,
            "rx_pin": 13,
            "tx_pin": 15,
            "address": 63,
            "timeout_ms": 1600,
            "retries": 2,
            "port": device,
        },  # fmt: skip
        "update_interval": interval,
        "sensors": {k: {"name": LABELS[k]} for k in SENSORS},
        "custom": [{"name": "E8", "id": "e8", "command": "0x0061"}],
    }


class Board:
    """What the subscriber has seen so far."""

    def __init__(self):
        self.lock = threading.Lock()
        self.state = None
        self.units = {}
        self.diag = {}
        self.status = None
        self.states = 0
        self.discovery = 0

    def on_message(self, client, userdata, msg):
        topic = msg.topic
        with self.lock:
            if topic.startswith("homeassistant/"):
                self.discovery += 1
                return
            try:
                data = json.loads(msg.payload) if msg.payload[:1] in (b"{", b"[") else None
            except ValueError:
                return
            if topic.endswith("/state"):
                self.state = (msg.payload.decode(), data)
                self.states += 1
            elif topic.endswith("/units") and data:
                self.units = data
            elif topic.endswith("/diag") and data:
                self.diag = data
            elif topic.endswith("/status"):
                self.status = msg.payload.decode()


def _unit(units, key):
    u = units.get(key)
    if isinstance(u, dict):
        return u.get("unit") or u.get("kmp_unit") or ""
    return u or ""


def raw_number(text, key):
    """The number exactly as the node wrote it in the JSON (not re-formatted by a float)."""
    marker = '"%s":' % key
    i = text.find(marker)
    if i < 0:
        return "-"
    j = i + len(marker)
    k = j
    while k < len(text) and text[k] not in ",}":
        k += 1
    return text[j:k].strip()


def render(board, tty):
    with board.lock:
        if board.state is None:
            return "waiting for the first reading..."
        text, state = board.state
        lines = []
        if tty:
            lines.append("\x1b[2J\x1b[H")
        lines.append("kmp2mqtt demo: virtual MULTICAL 403 -> node -> MQTT   (Ctrl-C to stop)")
        lines.append("status: %-8s readings: %-5d discovery configs: %d   time: %s"
                     % (board.status, board.states, board.discovery, state.get("time")))  # fmt: skip
        lines.append("")
        lines.append("%-26s %16s  %s" % ("sensor", "value", "unit"))
        for key in list(SENSORS) + ["e8"]:
            if key in state:
                lines.append("%-26s %16s  %s" % (LABELS.get(key, key), raw_number(text, key),
                                                 _unit(board.units, key)))  # fmt: skip
        d = board.diag
        link = d.get("link") or {}
        lines.append("")
        lines.append("link: %s request(s), %s bytes sent, %s received, last exchange %s ms, "
                     "CRC errors %s, timeouts %s"
                     % (link.get("requests"), link.get("bytes_tx"), link.get("bytes_rx"),
                        link.get("last_exchange_ms"), link.get("crc_errors"),
                        link.get("timeouts")))  # fmt: skip
        lines.append("node: cycle %s ms, errors %s, uptime %s s" % (d.get("cycle_ms"),
                     d.get("errors"), d.get("uptime_s")))  # fmt: skip
        return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, default=5, help="seconds between reads")
    parser.add_argument("--readings", type=int, default=0,
                        help="stop after this many readings (0: until Ctrl-C)")  # fmt: skip
    parser.add_argument("--deadline", type=float, default=0,
                        help="give up after this many seconds (0: never)")  # fmt: skip
    args = parser.parse_args(argv)

    import paho.mqtt.client as paho

    from host.broker import AmqttBroker
    from kmpsim import Simulator

    broker = None
    host = os.environ.get("MQTT_HOST")
    if host:
        port = int(os.environ.get("MQTT_PORT", "1883"))
    else:
        broker = AmqttBroker().start()
        host, port = broker.host, broker.port
    sim = Simulator(echo=True, time_scale=60).start()
    workdir = tempfile.mkdtemp(prefix="kmp2mqtt-demo-")
    cfg_path = os.path.join(workdir, "config.json")
    with open(cfg_path, "w") as f:
        json.dump(demo_config(host, port, sim.device, args.interval), f, indent=2)
    log_path = os.path.join(workdir, "node.log")
    board = Board()
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="kmp2mqtt-demo-viewer")
    sub.on_message = board.on_message
    sub.connect(host, port, 30)
    sub.subscribe([("kmp2mqtt/demo/#", 0), ("homeassistant/#", 0)])
    sub.loop_start()
    log = open(log_path, "w")
    node = subprocess.Popen([sys.executable, os.path.join(_ROOT, "main.py"), "--config", cfg_path],
                            stderr=log, stdout=log)  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    tty = sys.stdout.isatty()
    print("broker %s:%d, meter on %s, node log %s" % (host, port, sim.device, log_path))
    started = time.monotonic()
    shown = 0
    rc = 0
    try:
        while not stop.is_set():
            if node.poll() is not None:
                print("the node stopped (exit %s); see %s" % (node.returncode, log_path))
                rc = 1
                break
            if board.states != shown:
                shown = board.states
                print(render(board, tty), flush=True)
                if args.readings and shown >= args.readings:
                    break
            if args.deadline and time.monotonic() - started > args.deadline:
                print("no readings within %s s; see %s" % (args.deadline, log_path))
                rc = 1
                break
            stop.wait(0.2)
    finally:
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(10)
            except subprocess.TimeoutExpired:
                node.kill()
        sub.loop_stop()
        sub.disconnect()
        sim.stop()
        if broker is not None:
            broker.stop()
        log.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
