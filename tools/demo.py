#!/usr/bin/env python3
"""make demo: the whole chain on one machine, no hardware.

Starts a local MQTT broker on 127.0.0.1 (mosquitto when installed, else the embedded amqtt),
or uses yours: MQTT_HOST=host, MQTT_HOST=host:port, or MQTT_HOST with MQTT_PORT. Then the
virtual MULTICAL 403 on a pseudo-terminal (echoing like an IR head, paced at 1200 baud, values
moving 60x faster than life) and the kmp2mqtt node itself (`main.py --config ...`), and shows
the readings arriving in a live table until Ctrl-C.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(_ROOT, "lib"), os.path.join(_ROOT, "tools"), _ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

NODE_ID = "demo"
BASE_TOPIC = "kmp2mqtt"
DISCOVERY_PREFIX = "homeassistant"
CONNECT_TIMEOUT_S = 5
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
        "node_id": NODE_ID,
        "wifi": {"ssid": "", "password": ""},
        "mqtt": {
            "host": broker_host,
            "port": broker_port,
            "user": "",
            "password": "",
            "tls": False,
            "base_topic": BASE_TOPIC,
            "discovery": True,
            "discovery_prefix": DISCOVERY_PREFIX,
        },  # fmt: skip
        "meter": {
            "uart": 1,
            "rx_pin": 13,
            "tx_pin": 15,
            "address": 63,
            "timeout_ms": 1600,
            "retries": 2,
            "port": device,
            "read_budget": 0,  # the virtual meter has no battery: every interval, all along
        },  # fmt: skip
        "update_interval": interval,
        "sensors": {k: {"name": LABELS[k]} for k in SENSORS},
        "custom": [{"name": "E8", "id": "e8", "command": "0x0061"}],
    }


def broker_address(environ):
    """(host, port) of the user's broker from MQTT_HOST ("host", "host:port", "[v6]:port")
    and MQTT_PORT; None when MQTT_HOST is unset or empty. ValueError names a bad port."""
    host = environ.get("MQTT_HOST", "").strip()
    if not host:
        return None
    port = environ.get("MQTT_PORT", "").strip() or "1883"
    if host.startswith("["):  # an IPv6 literal, maybe with a port after the bracket
        end = host.find("]")
        if end < 0:
            raise ValueError("MQTT_HOST %r: expected [address]:port" % host)
        if host[end + 1 :].startswith(":"):
            port = host[end + 2 :]
        host = host[1:end]
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        number = int(port)
    except ValueError:
        number = 0
    if not 0 < number < 65536:
        raise ValueError("MQTT port %r: expected a number 1..65535" % port)
    return host, number


def check_reachable(host, port, timeout_s=CONNECT_TIMEOUT_S):
    """None when something accepts TCP on host:port, else the reason in a few words."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except socket.gaierror as e:
        return "unknown host (%s)" % (e.strerror or e)
    except TimeoutError:
        return "no answer within %d s" % timeout_s
    except OSError as e:
        return e.strerror or str(e)


def viewer_topics():
    """Exactly the demo node's topics: its own subtree and its discovery configs (on a broker
    shared with other devices, nothing of theirs is counted)."""
    from discovery import topics

    ids = list(SENSORS) + ["e8"]
    own = ["%s/%s/#" % (BASE_TOPIC, NODE_ID)]
    return own + list(topics(DISCOVERY_PREFIX, NODE_ID, ids))


class Board:
    """What the subscriber has seen so far."""

    def __init__(self, where=""):
        self.lock = threading.Lock()
        self.where = where  # the broker line, shown on every redraw
        self.state = None
        self.units = {}
        self.diag = {}
        self.diag_at = 0  # the number of readings seen when the last diag arrived
        self.status = None
        self.states = 0
        self.discovery = 0

    def on_message(self, client, userdata, msg):
        topic = msg.topic
        with self.lock:
            if topic.startswith(DISCOVERY_PREFIX + "/"):
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
                self.diag_at = self.states
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


def _shown(value):
    return "-" if value is None else value


def render(board, tty):
    with board.lock:
        if board.state is None:
            return "waiting for the first reading..."
        text, state = board.state
        lines = []
        if tty:
            lines.append("\x1b[2J\x1b[H")
        lines.append("kmp2mqtt demo: virtual MULTICAL 403 -> node -> MQTT   (Ctrl-C to stop)")
        lines.append(board.where)
        lines.append("status: %-8s readings: %-5d discovery configs: %d   time: %s"
                     % (board.status, board.states, board.discovery, state.get("time")))  # fmt: skip
        lines.append("")
        lines.append("%-26s %16s  %s" % ("sensor", "value", "unit"))
        for key in list(SENSORS) + ["e8"]:
            if key in state:
                lines.append("%-26s %16s  %s" % (LABELS.get(key, key), raw_number(text, key),
                                                 _unit(board.units, key)))  # fmt: skip
        lines.append("")
        d = board.diag
        if not d:
            lines.append("diag: none yet")
            return "\n".join(lines)
        # The node sends diag after the first reading, then every 5th and on a change: say
        # which reading these counters are from rather than pass them off as live.
        link = d.get("link") or {}
        lines.append("diag after reading %d (the node sends it every 5 readings and on changes):"
                     % board.diag_at)  # fmt: skip
        lines.append("  link: %s request(s), %s bytes sent, %s received, last exchange %s ms, "
                     "CRC errors %s, timeouts %s"
                     % tuple(_shown(link.get(k)) for k in ("requests", "bytes_tx", "bytes_rx",
                             "last_exchange_ms", "crc_errors", "timeouts")))  # fmt: skip
        lines.append("  node: %s cycle(s), last cycle %s ms, errors %s, uptime %s s"
                     % tuple(_shown(d.get(k)) for k in ("cycles", "cycle_ms", "errors",
                             "uptime_s")))  # fmt: skip
        return "\n".join(lines)


def log_tail(path, lines=5):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, default=5, help="seconds between reads (>= 5)")
    parser.add_argument("--readings", type=int, default=0,
                        help="stop after this many readings (0: until Ctrl-C)")  # fmt: skip
    parser.add_argument("--deadline", type=float, default=0,
                        help="give up after this many seconds (0: never)")  # fmt: skip
    args = parser.parse_args(argv)

    import paho.mqtt.client as paho

    from host.broker import local_broker
    from kmpsim import Simulator

    try:
        address = broker_address(os.environ)
    except ValueError as e:
        print("demo: %s" % e, file=sys.stderr)
        return 2
    broker = None
    if address is not None:
        host, port = address
        why = check_reachable(host, port)
        if why is not None:
            print("demo: no MQTT broker at %s:%d: %s (unset MQTT_HOST for a local one)"
                  % (host, port, why), file=sys.stderr)  # fmt: skip
            return 1
        where = "broker: %s:%d (MQTT_HOST)" % (host, port)
    else:
        import logging

        # amqtt reports the readiness probe (a TCP connect without MQTT) as two errors
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)
        broker = local_broker()
        try:
            broker.start()
        except Exception as e:  # a port race or a broken install: one line, not a traceback
            print("demo: the local %s broker did not start: %s" % (broker.name, e),
                  file=sys.stderr)  # fmt: skip
            return 1
        host, port = broker.host, broker.port
        where = "broker: %s on %s:%d (local, stops with the demo)" % (broker.name, host, port)
    sim = Simulator(echo=True, time_scale=60).start()
    workdir = tempfile.mkdtemp(prefix="kmp2mqtt-demo-")
    cfg_path = os.path.join(workdir, "config.json")
    with open(cfg_path, "w") as f:
        json.dump(demo_config(host, port, sim.device, args.interval), f, indent=2)
    log_path = os.path.join(workdir, "node.log")
    board = Board("%s   meter: %s" % (where, sim.device))
    sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="kmp2mqtt-demo-viewer")
    sub.on_message = board.on_message
    log = node = None
    rc = 0
    try:
        try:
            sub.connect(host, port, 30)
        except OSError as e:
            print("demo: cannot subscribe at %s:%d: %s" % (host, port, e.strerror or e),
                  file=sys.stderr)  # fmt: skip
            rc = 1
            return rc
        sub.subscribe([(t, 0) for t in viewer_topics()])
        sub.loop_start()
        log = open(log_path, "w")
        node = subprocess.Popen([sys.executable, os.path.join(_ROOT, "main.py"), "--config",
                                 cfg_path], stderr=log, stdout=log)  # fmt: skip
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *a: stop.set())
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        tty = sys.stdout.isatty()
        print("%s, meter on %s, node log %s" % (where, sim.device, log_path))
        started = time.monotonic()
        shown = 0
        while not stop.is_set():
            if node.poll() is not None:
                log.flush()
                print("the node stopped (exit %s):\n%s" % (node.returncode, log_tail(log_path)))
                rc = 1
                break
            if board.states != shown:
                shown = board.states
                print(render(board, tty), flush=True)
                if args.readings and shown >= args.readings:
                    break
            if args.deadline and time.monotonic() - started > args.deadline:
                print("no readings within %s s:\n%s" % (args.deadline, log_tail(log_path)))
                rc = 1
                break
            stop.wait(0.2)
    finally:
        if node is not None and node.poll() is None:
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
        if log is not None:
            log.close()
        if rc == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("the node's config and log are kept in %s" % workdir)
    return rc


if __name__ == "__main__":
    sys.exit(main())
