# firmware/device.py's MQTT client end to end on CPython: the client wrapper over our model of
# the frozen umqtt.simple (host_tests/fakes_esp32/umqtt/simple.py), on real TCP through a
# socket with MicroPython's API, against real brokers on 127.0.0.1 (amqtt in-process; mosquitto
# when installed, CI installs it): non-ASCII topics, payloads, will and client id arrive byte
# for byte; a broker that stops answering ends a wait after the timeout, plain and over TLS;
# MqttLink's pings keep a session the broker would otherwise drop.

import errno
import select
import shutil
import socket
import ssl
import sys
import threading
import time
import types
import uuid
from pathlib import Path

import pytest

from broker_fixtures import (  # noqa: F401
    BrokerInfo,
    Subscriber,
    amqtt_broker,
    broker,
    mosquitto_broker,
    mosquitto_tls,
    publish_retained,
)
from fake_clock import FakeClock
from host.broker import HOST, AmqttBroker
from mqttlink import MqttLink

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = '{"name":"Wärme","unit":"°C","note":"Vorlauf ✓"}'
FOREVER_S = 4.0  # a wait with no timeout gives up here, so a test fails instead of hanging


@pytest.fixture(scope="module")
def esp32():
    """(device, simple): firmware/device.py and the umqtt model, imported with the ESP32 fakes
    (machine, umqtt) on the path; sys.path and sys.modules put back afterwards."""
    names = ("device", "machine", "umqtt", "umqtt.simple")
    saved = {n: sys.modules.pop(n, None) for n in names}
    saved_path = list(sys.path)
    sys.path.insert(0, str(ROOT / "host_tests" / "fakes_esp32"))
    try:
        from umqtt import simple

        import device

        yield device, simple
    finally:
        sys.path[:] = saved_path
        for n in names:
            sys.modules.pop(n, None)
            if saved[n] is not None:
                sys.modules[n] = saved[n]


@pytest.fixture
def tcp(esp32, monkeypatch):
    """The umqtt model on real TCP."""
    device, simple = esp32
    monkeypatch.setattr(simple, "NET", TcpNet())
    return device, simple


# -- MicroPython's socket API on CPython -------------------------------------------------------


class MpSocket:
    """A TCP socket as MicroPython's looks to umqtt: read(n) returns n bytes (fewer only at
    EOF, b"" after it), None when non-blocking and nothing is there; write(str) sends UTF-8;
    setblocking(True) / settimeout(None) wait with no limit, which here gives up after
    FOREVER_S with BlockedForever."""

    def __init__(self, blocked_forever):
        self.s = socket.socket()
        self.timeout = None
        self._blocked = blocked_forever
        self.s.settimeout(FOREVER_S)

    def settimeout(self, t):
        self.timeout = t
        self.s.settimeout(FOREVER_S if t is None else t)

    def setblocking(self, flag):
        self.settimeout(None if flag else 0)

    def connect(self, addr):
        self.s.connect(addr)

    def write(self, buf, n=None):
        data = buf.encode() if isinstance(buf, str) else bytes(buf if n is None else buf[:n])
        self.s.sendall(data)
        return len(data)

    def read(self, n):
        out = bytearray()
        while len(out) < n:
            try:
                chunk = self.s.recv(n - len(out))
            except (BlockingIOError, ssl.SSLWantReadError):  # non-blocking, nothing there
                return bytes(out) if out else None
            except TimeoutError:
                if self.timeout is None:
                    raise self._blocked("read(%d): no timeout, no data for %.0f s" % (n, FOREVER_S))
                raise OSError(errno.ETIMEDOUT, "ETIMEDOUT")
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def close(self):
        self.s.close()


class TcpNet:
    """umqtt's `socket` module: MpSockets."""

    def __init__(self):
        self.sockets = []

    def socket(self):
        from umqtt import simple

        s = MpSocket(simple.BlockedForever)
        self.sockets.append(s)
        return s

    def getaddrinfo(self, host, port):
        return socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)


class MpSslSocket:
    """What MicroPython's SSLContext.wrap_socket returns, as umqtt uses it: read, write, close,
    setblocking() handed to the raw socket, and no settimeout."""

    def __init__(self, raw):
        self._raw = raw

    def read(self, n):
        return self._raw.read(n)

    def write(self, buf, n=None):
        return self._raw.write(buf, n)

    def setblocking(self, flag):
        self._raw.setblocking(flag)

    def close(self):
        self._raw.close()


class MpSslContext:
    """MicroPython's ssl.SSLContext, as device.make_client uses it, on CPython's ssl."""

    def __init__(self, protocol):
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.verify_mode = ssl.CERT_REQUIRED

    def load_verify_locations(self, cafile=None):
        self._ctx.load_verify_locations(cafile=cafile)

    def wrap_socket(self, sock, server_hostname=None):
        if self.verify_mode == ssl.CERT_NONE:
            self._ctx.check_hostname = False
        self._ctx.verify_mode = self.verify_mode
        # The TLS layer sits on the raw MpSocket's socket, so the raw socket's timeout is the
        # one that applies (as on MicroPython, where the SSL socket reads through it).
        sock.s = self._ctx.wrap_socket(sock.s, server_hostname=server_hostname)
        return MpSslSocket(sock)


MP_SSL = types.SimpleNamespace(SSLContext=MpSslContext, PROTOCOL_TLS_CLIENT=0,
                               CERT_NONE=ssl.CERT_NONE, CERT_REQUIRED=ssl.CERT_REQUIRED)  # fmt: skip


# -- a relay that can go silent ----------------------------------------------------------------


class Relay:
    """A TCP relay to the broker; after go_silent() it forwards nothing either way, as a hung
    broker or a half-open connection (Wi-Fi gone, no RST) look to the node."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.silent = False
        self._stop = False
        self._socks = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def go_silent(self):
        self.silent = True

    def _accept(self):
        self.listener.settimeout(0.1)
        while not self._stop:
            try:
                a, _ = self.listener.accept()
            except OSError:
                continue
            b = socket.create_connection((HOST, self.target), timeout=5)
            self._socks += [a, b]
            t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, a, b):
        peers = {a: b, b: a}
        while not self._stop:
            ready, _, _ = select.select([a, b], [], [], 0.1)
            for s in ready:
                try:
                    data = s.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if not self.silent:
                    peers[s].sendall(data)

    def close(self):
        self._stop = True
        for t in self._threads:
            t.join(2)
        for s in [self.listener, *self._socks]:
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- helpers -------------------------------------------------------------------------------------


def _base():
    return "kmp2mqtt/wärme-%s" % uuid.uuid4().hex[:8]


def _bounded(simple, fn, *args):
    """fn(*args) must fail with an OSError (the timeout), not block with no limit."""
    t0 = time.monotonic()
    try:
        fn(*args)
    except simple.BlockedForever as e:
        pytest.fail("blocked with no timeout (a board would hang until the watchdog): %s" % e)
    except OSError:
        return time.monotonic() - t0
    pytest.fail("no timeout")


def _poll_until(c, got, n=1, timeout=5.0):
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        c.check_msg()
        time.sleep(0.02)
    assert len(got) >= n, "no message within %.1f s" % timeout


# -- tests ---------------------------------------------------------------------------------------


def test_non_ascii_text_arrives_byte_for_byte(tcp, broker):
    device, simple = tcp
    base = _base()
    got = []
    with Subscriber(broker, [base + "/#"]) as sub:
        c = device.make_client("nöde-" + uuid.uuid4().hex[:6], broker.host, broker.port,
                               "bénédicte", "pässwörd", 60, None)  # fmt: skip
        c.set_callback(lambda topic, msg: got.append((topic, msg)))
        c.set_last_will(base + "/status", "offline ✝", True, 1)
        c.connect(True, 5)
        c.publish(base + "/state", PAYLOAD, True, 1)  # QoS 1: the PUBACK came back
        c.publish(base + "/diag", PAYLOAD)
        c.subscribe(base + "/cmd", 1)
        for leaf in ("state", "diag"):
            m = sub.wait_for(base + "/" + leaf)
            assert m.topic.encode() == (base + "/" + leaf).encode()
            assert m.payload == PAYLOAD.encode()
        cmd = '{"interval":"15min","név":"é"}'.encode()
        publish_retained(broker, base + "/cmd", cmd)
        _poll_until(c, got)
        assert got == [((base + "/cmd").encode(), cmd)]
        c.sock.close()  # MqttLink.drop(): no DISCONNECT, so the broker publishes the will
        will = sub.wait_for(base + "/status", payload="offline ✝".encode())
        assert will.topic == base + "/status"


def test_the_plain_umqtt_model_corrupts_non_ascii_text(tcp, broker):
    # The control: without the wrapper, a str is sized in characters and sent as UTF-8, and the
    # real broker does not get the message.
    _, simple = tcp
    base = _base()
    with Subscriber(broker, [base + "/#"]) as sub:
        c = simple.MQTTClient("node-" + uuid.uuid4().hex[:6], broker.host, broker.port,
                              keepalive=60)  # fmt: skip
        c.connect(True, 2)
        try:
            c.publish(base + "/state", PAYLOAD, False, 1)
        except (Exception, simple.BlockedForever):  # dropped, refused, or never acknowledged
            pass
        sub.assert_silent(base + "/state", 1.0, payload=PAYLOAD.encode())
        c.sock.close()


def test_a_silent_broker_ends_a_wait_after_the_timeout(tcp, broker):
    device, simple = tcp
    base = _base()
    with Relay(broker.port) as relay:
        c = device.make_client("node-" + uuid.uuid4().hex[:6], HOST, relay.port, None, None, 60,
                               None)  # fmt: skip
        c.set_callback(lambda topic, msg: None)
        c.connect(True, 1)
        c.publish(base + "/state", b"{}", True, 1)
        assert c.check_msg() is None  # leaves umqtt's socket blocking, with no timeout of its own
        relay.go_silent()
        assert _bounded(simple, c.publish, base + "/state", b"{}", True, 1) < 2.5
        assert _bounded(simple, c.subscribe, b"kmp2mqtt/cmd", 1) < 2.5
        c.sock.close()


@pytest.fixture(scope="module")
def tls_mosquitto(tmp_path_factory):
    for exe in ("mosquitto", "openssl"):
        if shutil.which(exe) is None:
            pytest.skip("%s not installed" % exe)
    from test_tls import _make_certs

    d = tmp_path_factory.mktemp("umqtt_tls")
    _make_certs(d)
    with mosquitto_tls(d, "allow_anonymous true") as info:
        yield info, d / "ca.crt"


def test_tls_text_and_bounded_waits(tcp, tls_mosquitto, monkeypatch):
    device, simple = tcp
    info, ca = tls_mosquitto
    base = _base()
    with Subscriber(info, [base + "/#"], ca_file=ca) as sub, Relay(info.port) as relay:
        monkeypatch.setitem(sys.modules, "ssl", MP_SSL)  # what make_client imports on a board
        c = device.make_client("nöde-" + uuid.uuid4().hex[:6], HOST, relay.port, None, None, 60,
                               {"ca_file": str(ca)})  # fmt: skip
        monkeypatch.setitem(sys.modules, "ssl", ssl)
        c.set_callback(lambda topic, msg: None)
        c.set_last_will(base + "/status", "offline ✝", True, 1)
        c.connect(True, 1)
        c.publish(base + "/state", PAYLOAD, True, 1)
        assert sub.wait_for(base + "/state").payload == PAYLOAD.encode()
        assert c.check_msg() is None
        relay.go_silent()
        assert _bounded(simple, c.publish, base + "/state", PAYLOAD, True, 1) < 2.5
        c.sock.close()


def test_a_certificate_from_another_ca_is_refused(tcp, tls_mosquitto, monkeypatch):
    device, _ = tcp
    info, ca = tls_mosquitto
    monkeypatch.setitem(sys.modules, "ssl", MP_SSL)
    c = device.make_client("node", HOST, info.port, None, None, 60,
                           {"ca_file": str(ca.parent / "other_ca.crt")})  # fmt: skip
    monkeypatch.setitem(sys.modules, "ssl", ssl)
    with pytest.raises(ssl.SSLCertVerificationError):
        c.connect(True, 2)
    c.sock.close()


def _link(make_client, info, clock, base):
    cfg = {"mqtt": {"host": info.host, "port": info.port, "user": "", "password": "",
                    "tls": False, "ca_file": ""}}  # fmt: skip
    link = MqttLink(make_client, cfg, clock, log=lambda text: None)
    link.configure(base + "/status", (base + "/cmd",))
    link.on_message = lambda topic, msg: None
    return link


def test_link_pings_keep_a_session_the_broker_would_drop(tcp, mosquitto_broker):
    # mosquitto is told a 1 s keepalive: it drops a client silent for 1.5 s (measured: 2.0.11
    # notices within ~5 s) and publishes the will. The link's clock runs 60x fast, so its pings
    # (after 30 s without a send) go out every 0.5 s of real time. (amqtt 0.12 does not drop
    # silent clients, so it cannot show this.)
    device, _ = tcp
    broker = mosquitto_broker
    base = _base()
    clock = FakeClock()

    def make_client(client_id, server, port, user, password, keepalive, tls):
        return device.make_client(client_id, server, port, user, password, 1, tls)

    with Subscriber(broker, [base + "/#"]) as sub:
        link = _link(make_client, broker, clock, base)
        assert link.connect("node-" + uuid.uuid4().hex[:6])
        sub.wait_for(base + "/status", payload=b"online")
        end = time.monotonic() + 6.5
        while time.monotonic() < end:
            time.sleep(0.05)
            clock.advance(3000)
            link.poll()
        assert link.connected and link.failures == 0, link.last_error
        assert link.pings >= 10
        assert not [m for m in sub.on(base + "/status") if m.payload == b"offline"]
        link.close()


def test_link_pings_through_the_paho_adapter(broker):
    # On a host MqttLink's ping() lands in host/mqtt_paho.py: a PINGREQ, its PINGRESP read by
    # the next poll, the session healthy.
    from host.runtime import make_client

    base = _base()
    clock = FakeClock()
    link = _link(make_client, broker, clock, base)
    assert link.connect("node-" + uuid.uuid4().hex[:6])
    for _ in range(3):
        clock.advance(30000)
        link.poll()
        time.sleep(0.1)
        link.poll()
    assert link.pings == 3 and link.connected and link.failures == 0
    assert link.publish(base + "/state", PAYLOAD, True, 1)
    link.close()


def test_amqtt_broker_as_a_context_manager(tcp):
    device, _ = tcp
    with AmqttBroker() as b:
        info = BrokerInfo("amqtt", b.host, b.port)
        with Subscriber(info, ["kmp2mqtt/#"]) as sub:
            c = device.make_client("node", b.host, b.port, None, None, 60, None)
            c.connect(True, 5)
            c.publish("kmp2mqtt/n/state", PAYLOAD, False, 1)
            assert sub.wait_for("kmp2mqtt/n/state").payload == PAYLOAD.encode()
            c.disconnect()
    assert b._loop is None  # stopped on leaving the block
