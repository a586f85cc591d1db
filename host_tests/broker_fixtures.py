"""Real MQTT brokers for host tests, on 127.0.0.1 only, plus a paho-based Subscriber.

    from broker_fixtures import amqtt_broker, mosquitto_broker, broker, Subscriber  # noqa: F401

amqtt_broker      amqtt 0.12.1 in-process (retained messages filtered per client: host/broker.py)
mosquitto_broker  `mosquitto -c <conf>` as a subprocess; skips when mosquitto is not installed
broker            parametrized over both
Each yields a BrokerInfo(name, host, port). Every wait has a deadline.
"""

import contextlib
import os
import pwd
import subprocess
import threading
import time
import uuid
from collections import namedtuple

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from host.broker import HOST, START_TIMEOUT_S, AmqttBroker, MosquittoBroker, free_port, stop_process
from host.broker import wait_listening as _wait_listening

BrokerInfo = namedtuple("BrokerInfo", "name host port")
Message = namedtuple("Message", "topic payload retain qos")


# -- amqtt ---------------------------------------------------------------------------------------


@pytest.fixture
def amqtt_broker():
    pytest.importorskip("amqtt", reason="amqtt not installed")
    b = AmqttBroker().start()
    try:
        yield BrokerInfo("amqtt", HOST, b.port)
    finally:
        b.stop()


# -- mosquitto -----------------------------------------------------------------------------------


@pytest.fixture
def mosquitto_broker():
    if not MosquittoBroker.available():
        pytest.skip("mosquitto not installed")
    b = MosquittoBroker()
    try:
        b.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield BrokerInfo("mosquitto", HOST, b.port)
    finally:
        b.stop()


@contextlib.contextmanager
def mosquitto_tls(d, extra_conf):
    """mosquitto with a TLS listener on 127.0.0.1, certificates ca.crt, server.crt and
    server.key in d (test_tls._make_certs), plus extra_conf lines; yields a BrokerInfo."""
    port = free_port()
    # as root, mosquitto would drop to user "mosquitto", who cannot read the private tmp dir
    me = pwd.getpwuid(os.getuid()).pw_name
    conf = d / "mosquitto.conf"
    conf.write_text(
        "listener %d %s\ncafile %s\ncertfile %s\nkeyfile %s\n%s\npersistence false\n"
        "log_dest stderr\nuser %s\n"
        % (port, HOST, d / "ca.crt", d / "server.crt", d / "server.key", extra_conf, me)
    )
    log_path = d / "mosquitto.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        if not _wait_listening(
            port, time.monotonic() + START_TIMEOUT_S, lambda: proc.poll() is None
        ):
            pytest.fail("mosquitto (TLS) did not start:\n" + log_path.read_text(errors="replace"))
        yield BrokerInfo("mosquitto-tls", HOST, port)
    finally:
        stop_process(proc)


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker(request):
    return request.getfixturevalue(request.param + "_broker")


# -- a subscriber to watch what reaches the broker -----------------------------------------------


class Subscriber:
    """A paho client (background loop thread) that records every message on its topics.

    with Subscriber(broker, ["kmp2mqtt/#"]) as sub:
        msg = sub.wait_for("kmp2mqtt/n/status", timeout=5)
    """

    def __init__(self, broker, topics, timeout=5.0, user=None, password=None, ca_file=None):
        self.messages = []
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._subacks = set()
        c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id="sub-" + uuid.uuid4().hex[:12],
            reconnect_on_failure=False,
        )
        c.on_connect = lambda *a: self._connected.set()
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self._client = c
        if user is not None:
            c.username_pw_set(user, password)
        if ca_file is not None:  # TLS, the broker's certificate checked against ca_file
            c.tls_set(ca_certs=str(ca_file))
        c.connect(broker.host, broker.port, keepalive=30)
        c.loop_start()
        try:
            if not self._connected.wait(timeout):
                raise AssertionError("subscriber: no CONNACK within %.1f s" % timeout)
            for t in topics:
                _, mid = c.subscribe(t, 1)
                self._wait(lambda mid=mid: mid in self._subacks, timeout, "SUBACK for %s" % t)
        except BaseException:
            self.close()
            raise

    def _on_message(self, client, userdata, m):
        with self._cond:
            self.messages.append(Message(m.topic, bytes(m.payload), bool(m.retain), m.qos))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self._cond:
            self._subacks.add(mid)
            self._cond.notify_all()

    def _wait(self, predicate, timeout, what):
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise AssertionError("subscriber: no %s within %.1f s" % (what, timeout))

    def on(self, topic):
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic, timeout=5.0, payload=None):
        """The first message on topic (with that payload, if given); AssertionError at timeout."""
        found = []

        def match():
            for m in self.messages:
                if m.topic == topic and (payload is None or m.payload == payload):
                    found.append(m)
                    return True
            return False

        what = "message on %s%s" % (topic, "" if payload is None else " = %r" % (payload,))
        self._wait(match, timeout, what)
        return found[0]

    def assert_silent(self, topic, seconds, payload=None):
        """Wait `seconds` and fail if a message (with that payload) arrived on topic."""
        time.sleep(seconds)
        got = [m for m in self.on(topic) if payload is None or m.payload == payload]
        assert not got, "unexpected message(s) on %s: %r" % (topic, got)

    def close(self):
        c, self._client = self._client, None
        if c is None:
            return
        try:
            c.disconnect()
        finally:
            c.loop_stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def publish_retained(broker, topic, payload, timeout=5.0):
    """Publish one retained QoS 1 message from a throwaway paho client, waiting for PUBACK."""
    c = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="pub-" + uuid.uuid4().hex[:12],
        reconnect_on_failure=False,
    )
    c.connect(broker.host, broker.port, keepalive=30)
    c.loop_start()
    try:
        info = c.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise AssertionError("retained publish to %s not acknowledged" % topic)
    finally:
        c.disconnect()
        c.loop_stop()
