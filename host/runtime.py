# The node on a Linux host: the same firmware code, with pyserial for the UART (a USB IR head or
# the virtual meter's pty), paho-mqtt behind the umqtt API, a thread timer, and no Wi-Fi.
# Logs go to stderr; Ctrl-C (SIGINT) or SIGTERM stop it cleanly.

import argparse
import os
import signal
import sys
import threading
import time

import config as node_config
import loop
import ticks
from host.serial_uart import SerialUart
from kmp.link import MeterLink
from lazybuffer import LazyBuffer
from mqttlink import MqttLink
from node import Node


def host_board_id(config_path):
    """The node's default id on a host: 12 hex digits from the machine's id and the config
    file's path, fixed while both are (two nodes on one host have two config files)."""
    import hashlib
    import socket

    machine = socket.gethostname()
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path) as f:
                machine = f.read().strip() or machine
            break
        except OSError:
            continue
    key = "%s|%s" % (machine, os.path.abspath(config_path))
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class HostPlatform:
    """Board facts on a host: no radio, no heap to speak of, no watchdog."""

    boots = 1

    def __init__(self, board_id):
        self.board_id = board_id

    def rssi(self):
        return None

    def free_heap(self):
        return None

    def feed(self):
        pass

    def network_up(self):
        return True

    def keep_clock(self):
        pass  # the host's clock is the operating system's


class ThreadTicker:
    """One-shot timer on a thread: its callback only raises the loop's flag."""

    def __init__(self):
        self._timer = None

    def arm(self, ms, callback):
        self.cancel()
        self._timer = threading.Timer(ms / 1000, callback)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def make_client(client_id, server, port, user, password, keepalive, tls):
    from host.mqtt_paho import MQTTClient

    ssl = None
    if tls:  # None or {"ca_file": path, "" for no certificate check}
        import ssl as _ssl

        if tls["ca_file"]:
            ssl = _ssl.create_default_context(cafile=tls["ca_file"])  # host name checked too
        else:
            ssl = _ssl.create_default_context()
            ssl.check_hostname = False
            ssl.verify_mode = _ssl.CERT_NONE  # encrypted, broker unverified
    return MQTTClient(client_id, server, port, user, password, keepalive, ssl=ssl)


def log(text):
    print("kmp2mqtt: %s" % text, file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="main.py", description="kmp2mqtt node on a host")
    parser.add_argument("--config", required=True, help="config.json with meter.port set")
    args = parser.parse_args(argv)
    try:
        cfg = node_config.load(args.config, target="host")
    except node_config.ConfigError as e:
        print("kmp2mqtt: %s:\n%s" % (args.config, e), file=sys.stderr)
        return 2
    meter = cfg["meter"]
    # Not fatal: an unplugged head is a meter fault the node reports (status, diag) while it
    # tries the port again every cycle, until the head is plugged in.
    uart = SerialUart(meter["port"], open_now=False)
    try:
        uart.any()
    except OSError as e:
        log("meter.port: %s; retrying every cycle" % e)
    link = MeterLink(uart, meter["address"], timeout_ms=meter["timeout_ms"],
                     retries=meter["retries"])  # fmt: skip
    mqtt = MqttLink(make_client, cfg, ticks, log)
    platform = HostPlatform(host_board_id(args.config))
    # The buffer directory sits beside the config file unless given as an absolute path.
    buf_path = os.path.join(os.path.dirname(os.path.abspath(args.config)), cfg["buffer"]["path"])
    buffer = LazyBuffer(buf_path, cfg["buffer"]["capacity"])
    node = Node(cfg, link, mqtt, ticks, time.time, platform, log, buffer)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    ticker = ThreadTicker()
    log("reading %s every %d s, publishing to %s:%d"
        % (meter["port"], cfg["update_interval"], cfg["mqtt"]["host"], cfg["mqtt"]["port"]))  # fmt: skip
    try:
        loop.run(node, ticker, loop.Flag(), platform, should_stop=stop.is_set)
    finally:
        ticker.cancel()
        if mqtt.connected:
            # Going away on purpose: say so, then disconnect cleanly (no last will).
            mqtt.publish(node.topic("status"), b"offline", True, 1)
        mqtt.close()
        uart.close()
        log("stopped")
    return 0
