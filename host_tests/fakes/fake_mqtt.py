# A fake MQTT broker + client pair with the umqtt.simple API, for node tests on CPython and
# MicroPython: publishes are recorded, retained messages kept, and the broker can be taken down.


class FakeBroker:
    def __init__(self):
        self.up = True
        self.messages = []  # (topic, payload, retain, qos) in order
        self.retained = {}
        self.wills = []  # last wills published because a client vanished
        self.clients = []
        self.connects = 0
        self.hang_clock = None  # a FakeClock: connect() then hangs until its timeout

    def deliver(self, topic, payload, retain=False):
        """A message from elsewhere (e.g. a retained command)."""
        if retain:
            self.retained[topic] = payload
        for c in self.clients:
            c._incoming(topic, payload)

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
        return False

    def _check(self):
        if not self.connected or not self.broker.up:
            self.connected = False
            raise OSError(104, "ECONNRESET")

    def publish(self, topic, msg, retain=False, qos=0):
        self._check()
        t, m = _s(topic), _b(msg)
        self.broker.messages.append((t, m, retain, qos))
        if retain:
            self.broker.retained[t] = m

    def subscribe(self, topic, qos=0):
        self._check()
        t = _s(topic)
        self.subs.append(t)
        if t in self.broker.retained:
            self._incoming(t, self.broker.retained[t])

    def _incoming(self, topic, payload):
        if topic in self.subs:
            self.inbox.append((topic, payload))

    def check_msg(self):
        self._check()
        while self.inbox:
            t, p = self.inbox.pop(0)
            if self.cb:
                self.cb(t.encode(), p)

    def ping(self):
        self._check()

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
