# The node's MQTT client under real MicroPython 1.29 (where len(str) counts characters and
# json.dumps keeps non-ASCII text as UTF-8): firmware/device.py's client over the model of the
# frozen umqtt.simple (host_tests/fakes_esp32/umqtt/simple.py) and its socket-level fake
# broker, and MqttLink's keepalive against a broker that drops silent clients.

import json
import sys

sys.path.insert(0, "host_tests/fakes_esp32")

from umqtt import simple

import device
import loop
import mqttlink
from fake_clock import FakeClock
from fake_mqtt import FakeBroker, FakeMqttClient
from mptest import assert_raises, run
from mqttlink import MqttLink
from node_harness import BASE_CONFIG, Harness

TOPIC = "kmp2mqtt/wärme/state"
PAYLOAD = '{"name":"Wärme","unit":"°C"}'


def _fresh(clock=None):
    simple.BROKER = FakeBroker()
    simple.BROKER.keepalive_clock = clock
    simple.CLOCK = clock
    simple.MADE.clear()
    simple.SOCKETS.clear()
    return simple.BROKER


def _bounded(fn, *args):
    """fn(*args) must fail with a timeout, not block forever."""
    try:
        fn(*args)
    except simple.BlockedForever:
        raise AssertionError("blocked with no timeout: a board would hang here")
    except OSError as e:
        return e
    raise AssertionError("no timeout")


def _cmd(got):
    return lambda topic, msg: got.append((topic, msg))


def test_text_goes_out_as_utf8_bytes():
    broker = _fresh()
    c = device.make_client("nöde", "192.168.1.2", 1883, "bénédicte", "pässwörd", 60, None)
    got = []
    c.set_callback(_cmd(got))
    c.set_last_will("kmp2mqtt/wärme/status", "offline ✝", True, 1)
    c.connect(True, 5)
    c.publish(TOPIC, PAYLOAD, True, 1)
    c.publish("kmp2mqtt/wärme/diag", PAYLOAD)
    c.subscribe("kmp2mqtt/wärme/cmd", 1)
    broker.deliver("kmp2mqtt/wärme/cmd", '{"interval":"15min","név":"é"}'.encode())
    c.check_msg()
    assert broker.protocol_errors == [], broker.protocol_errors
    s = simple.MADE[-1]  # what the broker received
    assert s.client_id == "nöde" and s.user == "bénédicte" and s.password == "pässwörd"
    assert s.will == ("kmp2mqtt/wärme/status", "offline ✝".encode(), True, 1)
    assert broker.messages == [(TOPIC, PAYLOAD.encode(), True, 1),
                               ("kmp2mqtt/wärme/diag", PAYLOAD.encode(), False, 0)]  # fmt: skip
    assert got == [("kmp2mqtt/wärme/cmd".encode(), '{"interval":"15min","név":"é"}'.encode())]
    c.sock.close()  # what MqttLink.drop() does: no DISCONNECT, so the will goes out
    assert broker.wills == [s.will] and broker.retained["kmp2mqtt/wärme/status"] == s.will[1]


def test_a_user_without_a_password_connects():
    # config allows mqtt.user without mqtt.password; umqtt sends a password field whenever a
    # user is set and sizes it with len(): None would raise TypeError at every connect.
    broker = _fresh()
    c = device.make_client("node", "192.168.1.2", 1883, "reader", None, 60, None)
    c.connect(True, 5)
    assert broker.protocol_errors == [], broker.protocol_errors
    s = simple.MADE[-1]
    assert s.user == "reader" and s.password == ""


def test_the_plain_umqtt_corrupts_text():
    # The fake catches the bug the client wrapper fixes: a str sized by len() as characters.
    broker = _fresh()
    c = simple.MQTTClient("node", "192.168.1.2", 1883, keepalive=60)
    c.set_last_will("kmp2mqtt/n/status", b"offline", True, 1)
    c.connect(True, 5)
    assert_raises(Exception, c.publish, TOPIC, PAYLOAD, True, 1)
    assert len(broker.protocol_errors) == 1 and broker.messages == [broker.messages[0]]
    assert broker.messages[0][:2] == ("kmp2mqtt/n/status", b"offline")  # the will, not PAYLOAD


def test_waits_stay_bounded_after_check_msg():
    clock = FakeClock()
    broker = _fresh(clock)
    c = device.make_client("node", "192.168.1.2", 1883, None, None, 60, None)
    c.set_callback(_cmd([]))
    c.connect(True, 3)
    c.publish("kmp2mqtt/n/state", b"{}", True, 1)
    assert c.check_msg() is None  # non-blocking: then umqtt's wait_msg sets blocking(True)
    broker.silent = True  # a hung broker or a half-open connection
    t0 = clock.ticks_ms()
    e = _bounded(c.publish, "kmp2mqtt/n/state", b"{}", True, 1)  # PUBACK never comes
    assert e.args[0] == 110 and clock.ticks_ms() - t0 == 3000
    assert simple.SOCKETS[-1].waits == [3]
    _bounded(c.subscribe, "kmp2mqtt/n/cmd", 1)


def test_tls_waits_stay_bounded_too():
    clock = FakeClock()
    broker = _fresh(clock)
    sys.modules["ssl"] = simple.FakeSslModule
    try:
        c = device.make_client("node", "mqtt.local", 8883, "u", "p", 60, {"ca_file": "ca.pem"})
    finally:
        del sys.modules["ssl"]
    ctx = c.ssl.ctx
    assert ctx.cafile == "ca.pem" and ctx.verify_mode == simple.FakeSslModule.CERT_REQUIRED
    c.set_callback(_cmd([]))
    c.connect(True, 2)
    raw = simple.SOCKETS[-1]
    assert raw.tls == "mqtt.local" and simple.MADE[-1].user == "u"
    c.check_msg()
    broker.silent = True
    e = _bounded(c.publish, "kmp2mqtt/n/state", PAYLOAD, True, 1)
    assert e.args[0] == 110 and raw.waits == [2]
    c.sock.close()
    assert raw.closed


def test_tls_without_a_certificate_check():
    _fresh()
    sys.modules["ssl"] = simple.FakeSslModule
    try:
        c = device.make_client("node", "mqtt.local", 8883, None, None, 60, {"ca_file": ""})
    finally:
        del sys.modules["ssl"]
    assert c.ssl.ctx.verify_mode == simple.FakeSslModule.CERT_NONE and c.ssl.ctx.cafile is None


# -- keepalive -------------------------------------------------------------------------------


def test_fake_broker_drops_a_silent_client():
    clock = FakeClock()
    broker = FakeBroker()
    broker.keepalive_clock = clock
    c = FakeMqttClient(broker, "n", "h", keepalive=60)
    c.set_last_will("n/status", b"offline", True, 1)
    c.connect()
    clock.advance(89000)
    c.check_msg()  # reading is not being heard from
    c.ping()
    clock.advance(90000)
    c.check_msg()  # 90 s since the ping: still alive
    clock.advance(1)
    assert_raises(OSError, c.check_msg)
    assert broker.wills == [("n/status", b"offline", True, 1)] and broker.dropped == 1


def _link(clock, broker):
    cfg = {"mqtt": {"host": "h", "port": 1883, "user": "", "password": "", "tls": False,
                    "ca_file": ""}}  # fmt: skip
    made = []

    def make(*args):
        made.append(FakeMqttClient(broker, *args))
        return made[-1]

    link = MqttLink(make, cfg, clock, log=lambda text: None)
    link.configure("n/status", ("n/cmd",))
    link.on_message = lambda t, m: None
    return link, made


def test_link_pings_after_half_the_keepalive_without_a_send():
    clock = FakeClock()
    broker = FakeBroker()
    broker.keepalive_clock = clock
    link, made = _link(clock, broker)
    assert link.connect("n") and made[0].keepalive == mqttlink.KEEPALIVE_S == 60
    clock.advance(29999)
    link.poll()
    assert made[0].pings == 0
    clock.advance(1)
    link.poll()
    link.poll()
    assert made[0].pings == 1 and link.pings == 1
    clock.advance(20000)
    assert link.publish("n/state", b"{}", True, 1)  # a send: the next ping waits for it
    clock.advance(29000)
    link.poll()
    assert made[0].pings == 1
    clock.advance(1000)
    link.poll()
    assert made[0].pings == 2 and broker.wills == [] and link.connected


def test_a_dead_connection_fails_at_the_ping_and_reconnects():
    clock = FakeClock()
    broker = FakeBroker()
    link, made = _link(clock, broker)
    assert link.connect("n")
    broker.up = False
    clock.advance(30000)
    link.poll()
    assert not link.connected and link.failures == 1
    broker.up = True
    clock.advance(5000)
    assert link.connect("n") and len(made) == 2


def test_a_half_open_session_fails_at_the_ping_within_the_timeout():
    # The broker (or the path to it) stops answering without closing: umqtt's ping() only
    # writes, so without waiting for the PINGRESP nothing would notice until a QoS 1 ack.
    clock = FakeClock()
    broker = _fresh(clock)
    c = device.make_client("node", "192.168.1.2", 1883, None, None, 60, None)
    c.set_callback(_cmd([]))
    c.connect(True, 3)
    c.ping()  # answered: returns
    broker.silent = True
    t0 = clock.ticks_ms()
    e = _bounded(c.ping)
    assert e.args[0] == 110 and clock.ticks_ms() - t0 == 3000  # ETIMEDOUT after the timeout


def test_a_failed_connect_closes_its_socket():
    # A broker that accepts TCP but never answers CONNECT: the attempt times out after
    # timeout_s, and its socket is closed at once (not left to the GC: lwIP has few sockets).
    clock = FakeClock()
    broker = _fresh(clock)
    link, _ = _link(clock, broker)
    link._make_client = device.make_client
    link.timeout_s = 4
    broker.silent = True
    t0 = clock.ticks_ms()
    assert not link.connect("n") and link.failures == 1 and link.client is None
    assert clock.ticks_ms() - t0 == 4000 and simple.SOCKETS[-1].closed
    assert "ETIMEDOUT" in link.last_error


class _ClockTicker:
    """A one-shot timer on the fake clock: it fires from the loop's idle sleep once due."""

    def __init__(self, clock):
        self.clock = clock
        self.due = None
        self.callback = None
        sleep = clock.sleep_ms

        def sleep_ms(ms):
            sleep(ms)
            if self.due is not None and clock.ticks_diff(clock.ticks_ms(), self.due) >= 0:
                self.due = None
                self.callback()

        clock.sleep_ms = sleep_ms

    def arm(self, ms, callback):
        self.due = self.clock.ticks_add(self.clock.ticks_ms(), ms)
        self.callback = callback


def test_node_stays_online_with_a_long_interval():
    # 150 s between reads: without pings mosquitto would drop the node after 90 s of silence,
    # publish "offline" (retained), and the node would reconnect every cycle.
    cfg = dict(BASE_CONFIG)
    cfg["update_interval"] = 150
    cfg["sensors"] = {"heat_energy": {"name": "Wärme"}, "temp1": {"name": "Vorlauf °C"}}
    h = Harness(cfg)
    h.broker = _fresh(h.clock)  # the node's client: device.make_client over the umqtt model
    h.mqtt._make_client = device.make_client
    loop.run(h.node, _ClockTicker(h.clock), loop.Flag(), h.platform, max_cycles=4)
    assert h.clock.now > 4 * 150 * 1000 - 150 * 1000
    assert h.broker.protocol_errors == [] and h.broker.wills == [], h.broker.protocol_errors
    assert h.broker.connects == 1 and h.mqtt.failures == 0 and h.node.cycles == 4
    assert h.broker.retained[h.topic("status")] == b"online"
    assert h.mqtt.pings >= 3 * 4  # ~4 per 150 s of quiet
    assert len([m for m in h.broker.messages if m[0] == h.topic("state")]) == 4
    names = []
    for t, raw in h.broker.retained.items():
        if t.startswith("homeassistant/") and t.endswith("/config"):
            names.append(json.loads(raw).get("name"))
    assert "Wärme" in names and "Vorlauf °C" in names, names


run(globals(), "mqtt_client")
