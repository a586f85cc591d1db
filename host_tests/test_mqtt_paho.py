"""host/mqtt_paho.py (umqtt.simple's API over paho-mqtt) against real brokers: amqtt in-process
and mosquitto (skipped when not installed), on 127.0.0.1 only, every wait with a deadline."""

import errno
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from broker_fixtures import (  # noqa: F401
    Subscriber,
    amqtt_broker,
    broker,
    mosquitto_broker,
    publish_retained,
)
from host.mqtt_paho import MQTTClient, MQTTException

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 5


def names():
    """A fresh topic base and client id per test: retained messages outlive a client."""
    node = "n" + uuid.uuid4().hex[:10]
    return "kmp2mqtt/" + node, node


def client(b, client_id, **kw):
    return MQTTClient(client_id, b.host, b.port, keepalive=30, **kw)


# -- publish -------------------------------------------------------------------------------------


def test_retained_publish_is_seen_by_a_later_subscriber(broker):
    base, node = names()
    c = client(broker, node)
    assert c.connect(True, TIMEOUT) == 0
    c.publish(base + "/state", '{"heat_energy":12.345}', True, 0)  # str topic and payload
    c.publish((base + "/units").encode(), b'{"heat_energy":{"unit":"GJ"}}', True, 1)  # bytes
    c.disconnect()
    with Subscriber(broker, [base + "/#"]) as sub:
        state = sub.wait_for(base + "/state", TIMEOUT)
        units = sub.wait_for(base + "/units", TIMEOUT)
    assert state.payload == b'{"heat_energy":12.345}' and state.retain
    assert units.payload == b'{"heat_energy":{"unit":"GJ"}}' and units.retain


def test_qos1_publish_returns_after_puback(broker):
    base, node = names()
    with Subscriber(broker, [base + "/history"]) as sub:
        c = client(broker, node)
        c.connect(True, TIMEOUT)
        for k in range(5):
            c.publish(base + "/history", '{"n":%d}' % k, False, 1)
        c.disconnect()
        sub.wait_for(base + "/history", TIMEOUT, b'{"n":4}')
        got = sub.on(base + "/history")
    assert [m.payload for m in got] == [b'{"n":%d}' % k for k in range(5)]
    assert all(m.qos == 1 and not m.retain for m in got)


def test_utf8_payload_round_trip(broker):
    base, node = names()
    with Subscriber(broker, [base + "/units"]) as sub:
        c = client(broker, node)
        c.connect(True, TIMEOUT)
        c.publish(base + "/units", '{"unit":"m³"}', False, 1)
        c.disconnect()
        assert sub.wait_for(base + "/units", TIMEOUT).payload == '{"unit":"m³"}'.encode()


def test_qos2_is_refused_like_umqtt(amqtt_broker):
    c = client(amqtt_broker, names()[1])
    c.connect(True, TIMEOUT)
    with pytest.raises(ValueError):
        c.publish("kmp2mqtt/x", b"1", False, 2)
    c.disconnect()


# -- last will ----------------------------------------------------------------------------------


def test_last_will_on_unclean_loss(broker):
    # What MqttLink.drop() does: close umqtt's socket without DISCONNECT.
    base, node = names()
    with Subscriber(broker, [base + "/status"]) as sub:
        c = client(broker, node)
        c.set_last_will(base + "/status", b"offline", True, 1)
        c.connect(True, TIMEOUT)
        c.publish(base + "/status", b"online", True, 1)
        sub.wait_for(base + "/status", TIMEOUT, b"online")
        c.sock.close()
        will = sub.wait_for(base + "/status", TIMEOUT, b"offline")
    assert will.qos == 1
    with pytest.raises(OSError):
        c.publish(base + "/state", b"{}")
    # The will was retained: a newcomer learns the node is offline.
    with Subscriber(broker, [base + "/status"]) as later:
        assert later.wait_for(base + "/status", TIMEOUT).payload == b"offline"


_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from host.mqtt_paho import MQTTClient
c = MQTTClient(sys.argv[4], "127.0.0.1", int(sys.argv[2]), keepalive=60)
c.set_last_will(sys.argv[3], b"offline", True, 1)
c.connect(True, 5)
c.publish(sys.argv[3], b"online", True, 1)
print("ready", flush=True)
time.sleep(60)
"""


def test_last_will_when_the_process_is_killed(broker):
    base, node = names()
    status = base + "/status"
    with Subscriber(broker, [status]) as sub:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(ROOT), str(broker.port), status, node],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 15)
            assert ready and proc.stdout.readline().strip() == b"ready", proc.stderr.read1()
            sub.wait_for(status, TIMEOUT, b"online")
            proc.kill()  # SIGKILL: no DISCONNECT, the kernel closes the socket
            proc.wait(TIMEOUT)
            sub.wait_for(status, TIMEOUT, b"offline")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(TIMEOUT)
            proc.stdout.close()
            proc.stderr.close()


def test_no_last_will_after_clean_disconnect(broker):
    base, node = names()
    with Subscriber(broker, [base + "/status"]) as sub:
        c = client(broker, node)
        c.set_last_will(base + "/status", b"offline", True, 1)
        c.connect(True, TIMEOUT)
        c.publish(base + "/status", b"online", True, 1)
        sub.wait_for(base + "/status", TIMEOUT, b"online")
        c.disconnect()
        sub.assert_silent(base + "/status", 1.5, b"offline")
    with pytest.raises(OSError):
        c.publish(base + "/state", b"{}")


# -- connect failures ---------------------------------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connect_to_a_port_without_listener_raises_oserror():
    c = MQTTClient("n", "127.0.0.1", _free_port())
    t0 = time.monotonic()
    with pytest.raises(OSError):
        c.connect(True, 2)
    assert time.monotonic() - t0 < 2.5
    with pytest.raises(OSError):
        c.publish("kmp2mqtt/x", b"1")


class _FakeBroker:
    """A listener that reads CONNECT and answers with `reply` (or nothing at all)."""

    def __init__(self, reply=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self._conns = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self._conns.append(conn)
        conn.settimeout(10)
        try:
            conn.recv(1024)
            if self.reply is not None:
                conn.sendall(self.reply)
        except OSError:
            pass

    def close(self):
        for conn in self._conns:
            conn.close()
        self.sock.close()
        self._thread.join(11)


def test_connect_timeout_when_the_broker_never_answers():
    fake = _FakeBroker(reply=None)
    try:
        c = MQTTClient("n", "127.0.0.1", fake.port)
        t0 = time.monotonic()
        with pytest.raises(OSError) as exc:
            c.connect(True, 1)
        elapsed = time.monotonic() - t0
    finally:
        fake.close()
    assert exc.value.errno == errno.ETIMEDOUT
    assert 0.9 <= elapsed < 2.0, elapsed


@pytest.mark.parametrize("rc", [1, 2, 3, 4, 5])
def test_broker_refusal_raises_mqttexception_with_the_connack_code(rc):
    fake = _FakeBroker(reply=bytes((0x20, 0x02, 0x00, rc)))
    try:
        c = MQTTClient("n", "127.0.0.1", fake.port)
        with pytest.raises(MQTTException) as exc:
            c.connect(True, 3)
    finally:
        fake.close()
    assert exc.value.args == (rc,)


def test_default_ports_and_ssl_flag():
    assert MQTTClient("n", "h").port == 1883
    assert MQTTClient("n", "h", ssl=True).port == 8883
    assert MQTTClient("n", "h", 1884).port == 1884


# -- incoming -----------------------------------------------------------------------------------


def test_check_msg_delivers_a_retained_command(broker):
    base, node = names()
    publish_retained(broker, base + "/cmd", b'{"sleep":false}')
    got = []
    c = client(broker, node)
    c.set_callback(lambda topic, msg: got.append((topic, msg)))
    c.connect(True, TIMEOUT)
    c.subscribe(base + "/cmd", 1)
    deadline = time.monotonic() + TIMEOUT
    while not got and time.monotonic() < deadline:
        c.check_msg()
        time.sleep(0.01)
    assert got == [((base + "/cmd").encode(), b'{"sleep":false}')]
    assert c.check_msg() is None  # nothing pending: returns at once
    c.disconnect()


def test_wait_msg_and_its_deadline(broker):
    base, node = names()
    got = []
    c = client(broker, node)
    c.set_callback(lambda topic, msg: got.append((topic, msg)))
    c.connect(True, 1)
    c.subscribe((base + "/cmd").encode(), 0)
    t0 = time.monotonic()
    with pytest.raises(OSError) as exc:
        c.wait_msg()
    assert exc.value.errno == errno.ETIMEDOUT
    assert 0.9 <= time.monotonic() - t0 < 2.0
    publish_retained(broker, base + "/cmd", b"ping")
    assert c.wait_msg() == 0x30  # PUBLISH, QoS 0 (granted), live so not retained
    assert got == [((base + "/cmd").encode(), b"ping")]
    c.ping()
    c.publish(base + "/state", b"{}", True, 1)  # still healthy after ping + PINGRESP
    c.disconnect()


def test_subscribe_needs_a_callback(amqtt_broker):
    c = client(amqtt_broker, names()[1])
    c.connect(True, TIMEOUT)
    with pytest.raises(AssertionError):
        c.subscribe("kmp2mqtt/x/cmd")
    c.disconnect()


def test_persistent_session_flag(mosquitto_broker):
    # umqtt returns CONNACK's session-present bit from connect().
    node = names()[1]
    c = client(mosquitto_broker, node)
    assert c.connect(False, TIMEOUT) == 0
    c.disconnect()
    assert c.connect(False, TIMEOUT) == 1
    c.disconnect()
    assert c.connect(True, TIMEOUT) == 0
    c.disconnect()
