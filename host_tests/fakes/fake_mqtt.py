# A fake MQTT broker + client pair with the umqtt.simple API, for node tests on CPython and
# MicroPython: publishes are recorded, retained messages kept, and the broker can be taken down.
# Optionally it enforces the keepalive as mosquitto does: a client it has not heard from for
# 1.5 x its keepalive is dropped and its last will published (umqtt never pings by itself).


class FakeBroker:
    def __init__(self):
        self.up = True
        self.messages = []  # (topic, payload, retain, qos) in order
        self.retained = {}
        self.wills = []  # last wills published because a client vanished
        self.clients = []
        self.connects = 0
        self.dropped = 0  # clients dropped for silence (keepalive)
        self.hang_clock = None  # a FakeClock: connect() then hangs until its timeout
        # A clock with the ticks API: keepalive enforced (off while None). Checked whenever a
        # client does anything, and by expire().
        self.keepalive_clock = None
        # True: packets reach the broker but nothing is answered (a hung broker, a half-open
        # connection). Modelled by the socket-level fake (fakes_esp32/umqtt/simple.py).
        self.silent = False
        self.protocol_errors = []  # why the socket-level fake dropped a connection
        # A slow broker: every acknowledged packet (CONNACK, PUBACK, SUBACK) comes this late,
        # on ack_clock (a FakeClock) while the client waits.
        self.ack_clock = None
        self.ack_delay_ms = 0

    def deliver(self, topic, payload, retain=False):
        """A message from elsewhere (e.g. a retained command)."""
        self.expire()
        if retain:
            self.retained[topic] = payload
        for c in self.clients:
            c._incoming(topic, payload)

    def expire(self):
        """Drop every client silent for more than 1.5 x its keepalive (the will goes out)."""
        clock = self.keepalive_clock
        if clock is None:
            return
        now = clock.ticks_ms()
        for c in list(self.clients):
            if c.keepalive and clock.ticks_diff(now, c.heard) > c.keepalive * 1500:
                self.dropped += 1
                c.close()

    def last(self, topic):
        for t, p, _, _ in reversed(self.messages):
            if t == topic:
                return p
        return None


class FakeMqttClient:
    def __init__(self, broker, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None):  # fmt: skip
        self.broker = broker
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.password = password
        self.ssl = ssl
        self.keepalive = keepalive
        self.heard = 0  # broker's ticks_ms when it last received a packet from this client
        self.pings = 0
        self.will = None
        self.cb = None
        self.subs = []
        self.inbox = []
        self.connected = False
        self.sock = self  # umqtt exposes .sock; MqttLink.drop() closes it

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.will = (_s(topic), _b(msg), retain, qos)

    def connect(self, clean_session=True, timeout=None):
        if self.broker.hang_clock is not None:
            self.broker.hang_clock.sleep_ms(int((timeout or 30) * 1000))
            raise OSError(110, "ETIMEDOUT")
        if not self.broker.up:
            raise OSError(111, "ECONNREFUSED")
        self.connected = True
        self.broker.connects += 1
        self.broker.clients.append(self)
        self._heard()
        self._ack()
        return False

    def _ack(self):
        if self.broker.ack_clock is not None:
            self.broker.ack_clock.sleep_ms(self.broker.ack_delay_ms)

    def _check(self, sends=True):
        """Before each call: the broker may have dropped us. sends: the call writes a packet
        (check_msg only reads, so it does not count as being heard from)."""
        self.broker.expire()
        if not self.connected or not self.broker.up:
            self.connected = False
            raise OSError(104, "ECONNRESET")
        if sends:
            self._heard()

    def _heard(self):
        clock = self.broker.keepalive_clock
        if clock is not None:
            self.heard = clock.ticks_ms()

    def publish(self, topic, msg, retain=False, qos=0):
        self._check()
        t, m = _s(topic), _b(msg)
        self.broker.messages.append((t, m, retain, qos))
        if retain:
            self.broker.retained[t] = m
        if qos:
            self._ack()

    def subscribe(self, topic, qos=0):
        self._check()
        t = _s(topic)
        self._ack()
        self.subs.append(t)
        if t in self.broker.retained:
            self._incoming(t, self.broker.retained[t])

    def _incoming(self, topic, payload):
        if topic in self.subs:
            self.inbox.append((topic, payload))

    def check_msg(self):
        self._check(False)
        while self.inbox:
            t, p = self.inbox.pop(0)
            if self.cb:
                self.cb(t.encode(), p)

    def ping(self):
        self._check()
        self.pings += 1

    def close(self):
        # The connection vanished without DISCONNECT: the broker publishes the will.
        if self.connected and self.will:
            t, m, retain, qos = self.will
            self.broker.wills.append(self.will)
            self.broker.messages.append((t, m, retain, qos))
            if retain:
                self.broker.retained[t] = m
        self._gone()

    def disconnect(self):
        self._check()
        self._gone()

    def _gone(self):
        self.connected = False
        if self in self.broker.clients:
            self.broker.clients.remove(self)


def _s(x):
    return x.decode() if isinstance(x, (bytes, bytearray)) else x


def _b(x):
    return x.encode() if isinstance(x, str) else bytes(x)
