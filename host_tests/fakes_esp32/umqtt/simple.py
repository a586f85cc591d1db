# A model of MicroPython 1.29's frozen umqtt.simple, our own code written from its behaviour
# (not a copy), over a socket-level fake network. It is faithful where the firmware depends on
# the real one:
# - field and packet lengths are len() of what it is given, and write(str) sends UTF-8 (as
#   MicroPython's socket does), so a non-ASCII str makes a mis-framed packet: the broker drops
#   the connection (here at once, a real broker sooner or later);
# - connect(timeout=) sets the socket's timeout; check_msg() makes the socket non-blocking and
#   wait_msg() makes it blocking again after its first read. Blocking means forever: the
#   connect timeout is gone (FakeSocket raises BlockedForever where a board would hang);
# - TLS: self.ssl.wrap_socket(sock, server_hostname=...) and self.sock is then only the SSL
#   socket, which forwards setblocking() to the raw socket and has no settimeout();
# - it never pings by itself; a QoS 1 publish and subscribe loop on wait_msg() for their ack.
# Not modelled: ssl=True with ssl_params (the legacy form), QoS 2.
#
# The network (NET) is in memory by default: FakeSocket decodes the client's bytes into a
# FakeMqttClient session on BROKER (host_tests/fakes/fake_mqtt.py) and answers as the broker.
# A test may set NET to real TCP (host_tests/test_umqtt_device_client.py).

from fake_mqtt import FakeBroker, FakeMqttClient

BROKER = FakeBroker()
MADE = []  # the broker-side sessions (FakeMqttClient, text fields decoded), as accepted
SOCKETS = []  # the last few FakeSockets made, for tests (their .waits)
CLOCK = None  # a FakeClock: a socket wait that times out advances it by the timeout


class MQTTException(Exception):
    pass


class BlockedForever(BaseException):
    """A read with no timeout that nothing will ever answer: on a board the call never returns
    (until the watchdog resets it). Not an Exception, so no `except Exception` swallows it."""


def _remaining(n):
    """MQTT's variable-length remaining-length field."""
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _u16(n):
    return bytes((n >> 8 & 0xFF, n & 0xFF))


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None, ssl_params=None):  # fmt: skip
        self.client_id = client_id
        self.server = server
        self.port = port or (8883 if ssl else 1883)
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.ssl_params = ssl_params
        self.sock = None
        self.cb = None
        self.pid = 0
        self.lw_topic = None
        self.lw_msg = None
        self.lw_qos = 0
        self.lw_retain = False

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        assert 0 <= qos <= 2
        assert topic
        self.lw_topic = topic
        self.lw_msg = msg
        self.lw_qos = qos
        self.lw_retain = retain

    def _field(self, s):
        # Sized with len() of whatever it is; the socket sends a str as UTF-8.
        self.sock.write(_u16(len(s)))
        self.sock.write(s)

    def connect(self, clean_session=True, timeout=None):
        if self.sock:
            self.sock.close()
        self.sock = sock = NET.socket()  # kept at once: a failed connect leaves it here
        sock.settimeout(timeout)
        sock.connect(NET.getaddrinfo(self.server, self.port)[0][-1])
        if self.ssl:
            self.sock = sock = self.ssl.wrap_socket(sock, server_hostname=self.server)
        flags = 2 if clean_session else 0
        size = 12 + len(self.client_id)  # variable header, client id length and client id
        if self.user:
            flags |= 0xC0
            size += 4 + len(self.user) + len(self.pswd)
        if self.lw_topic:
            flags |= 4 | self.lw_qos << 3 | self.lw_retain << 5
            size += 4 + len(self.lw_topic) + len(self.lw_msg)
        sock.write(b"\x10" + _remaining(size))
        sock.write(b"\x00\x04MQTT\x04" + bytes((flags,)) + _u16(self.keepalive))
        self._field(self.client_id)
        if self.lw_topic:
            self._field(self.lw_topic)
            self._field(self.lw_msg)
        if self.user:
            self._field(self.user)
            self._field(self.pswd)
        ack = sock.read(4)
        # umqtt asserts (or fails indexing an empty read) on anything but a CONNACK
        assert ack and len(ack) == 4 and ack[0] == 0x20 and ack[1] == 2, "no CONNACK: %r" % (ack,)
        if ack[3]:
            raise MQTTException(ack[3])
        return ack[2] & 1

    def disconnect(self):
        self.sock.write(b"\xe0\x00")
        self.sock.close()

    def ping(self):
        self.sock.write(b"\xc0\x00")  # the PINGRESP is consumed by a later wait_msg()

    def publish(self, topic, msg, retain=False, qos=0):
        assert qos in (0, 1), "QoS 2 is not supported"
        size = 2 + len(topic) + len(msg) + (2 if qos else 0)
        self.sock.write(bytes((0x30 | qos << 1 | retain,)) + _remaining(size))
        self._field(topic)
        if qos:
            self.pid += 1
            pid = self.pid
            self.sock.write(_u16(pid))
        self.sock.write(msg)
        while qos:
            if self.wait_msg() == 0x40:  # PUBACK: its length and packet id follow
                ack = self.sock.read(3)
                assert ack[0] == 2
                if ack[1] << 8 | ack[2] == pid:
                    return

    def _subunsub(self, kind, topic, extra, ack_kind, ack_len):
        self.pid += 1
        pid = self.pid
        self.sock.write(bytes((kind,)) + _remaining(4 + len(topic) + len(extra)) + _u16(pid))
        self._field(topic)
        if extra:
            self.sock.write(extra)
        while True:
            if self.wait_msg() == ack_kind:
                ack = self.sock.read(ack_len)
                assert ack[1] << 8 | ack[2] == pid
                if ack_len > 3 and ack[3] == 0x80:
                    raise MQTTException(0x80)
                return

    def subscribe(self, topic, qos=0):
        assert self.cb is not None, "Subscribe callback is not set"
        self._subunsub(0x82, topic, bytes((qos,)), 0x90, 4)

    def unsubscribe(self, topic):
        self._subunsub(0xA2, topic, b"", 0xB0, 3)

    def _read_len(self):
        n = shift = 0
        while True:
            b = self.sock.read(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                return n
            shift += 7

    def wait_msg(self):
        first = self.sock.read(1)
        self.sock.setblocking(True)  # the rest of this packet, and every later wait: forever
        if first is None:
            return None
        if first == b"":
            raise OSError(-1)
        op = first[0]
        if op == 0xD0:  # PINGRESP: consumed here, reported as nothing
            assert self.sock.read(1) == b"\x00"
            return None
        if op & 0xF0 != 0x30:
            return op  # an ack: the caller reads its body
        size = self._read_len()
        n = self.sock.read(2)
        n = n[0] << 8 | n[1]
        topic = self.sock.read(n)
        size -= 2 + n
        if op & 6:
            pid = self.sock.read(2)
            size -= 2
        msg = self.sock.read(size)
        self.cb(topic, msg)
        if op & 6 == 2:
            self.sock.write(b"\x40\x02" + pid)
        return op

    def check_msg(self):
        self.sock.setblocking(False)
        return self.wait_msg()


# -- the network -------------------------------------------------------------------------------


class _Reader:
    """One packet body, decoded strictly: a field running past the end, bytes left over, or a
    string that is not UTF-8 make the packet malformed (ValueError / UnicodeError)."""

    def __init__(self, body):
        self.body = body
        self.at = 0

    def take(self, n):
        end = self.at + n
        if end > len(self.body):
            raise ValueError("field runs past the end of the packet")
        data = self.body[self.at : end]
        self.at = end
        return data

    def u16(self):
        d = self.take(2)
        return d[0] << 8 | d[1]

    def binary(self):
        return self.take(self.u16())

    def text(self):
        return self.binary().decode()

    def rest(self):
        return self.take(len(self.body) - self.at)

    def more(self):
        return self.at < len(self.body)

    def end(self):
        if self.more():
            raise ValueError("%d bytes left over in the packet" % (len(self.body) - self.at))


def _maybe_text(b):
    try:
        return b.decode()
    except UnicodeError:
        return b


class FakeSocket:
    """A MicroPython socket (connect, settimeout, setblocking, read, write, close) to a
    FakeBroker, in memory. The broker's side decodes what the client wrote, packet by packet,
    into a FakeMqttClient session and queues its answers; a malformed packet drops the
    connection (the will goes out), as a real broker does. Reads: a non-blocking one returns
    None when nothing is there; a blocking one that would wait records its timeout in .waits,
    then raises BlockedForever (no timeout) or advances CLOCK and raises OSError(ETIMEDOUT)."""

    def __init__(self, broker):
        self.broker = broker
        self.timeout = None  # None: blocking, no timeout; 0: non-blocking; else seconds
        self.waits = []
        self.peer = None
        self.tls = None  # server_hostname, once wrapped by FakeSslContext
        self.session = None  # the broker's FakeMqttClient, once CONNECT was accepted
        self.inbound = bytearray()  # client -> broker, not decoded yet
        self.outbound = bytearray()  # broker -> client, not read yet
        self.eof = False  # the broker closed the connection
        self.closed = False  # the client closed it
        self.dropped = None  # why the broker dropped the connection, if it did

    def settimeout(self, t):
        self.timeout = t

    def setblocking(self, flag):
        self.timeout = None if flag else 0

    def connect(self, addr):
        self.peer = addr
        if self.broker.hang_clock is not None:  # the TCP connect itself hangs
            self._wait(0)
        if not self.broker.up:
            raise OSError(111, "ECONNREFUSED")

    def write(self, buf, n=None):
        if self.closed:
            raise OSError(9, "EBADF")
        if self.eof:
            raise OSError(104, "ECONNRESET")
        if isinstance(buf, str):
            data = buf.encode()
            if len(data) != len(buf):
                # umqtt sized this field with len(): from here on the stream is mis-framed.
                self._drop("a str of %d characters sent as %d bytes" % (len(buf), len(data)))
                return len(data)
        else:
            data = bytes(buf if n is None else buf[:n])
        self.inbound += data
        self._serve()
        return len(data)

    def read(self, n):
        if self.closed:
            raise OSError(9, "EBADF")
        self._sync()
        out = self.outbound
        if len(out) >= n or self.eof:
            self.outbound = out[n:]
            return bytes(out[:n])  # b"" once the broker has closed and all was read
        if self.timeout == 0:
            if not out:
                return None
            self.outbound = bytearray()
            return bytes(out)
        self._wait(n)

    def _wait(self, n):
        # Nothing more will come: in this synchronous world the broker has already answered.
        self.waits.append(self.timeout)
        if self.timeout is None:
            raise BlockedForever("read(%d) with no timeout and no data: a board hangs here" % n)
        clock = CLOCK if CLOCK is not None else self.broker.hang_clock
        if clock is not None:
            clock.sleep_ms(int(self.timeout * 1000))
        raise OSError(110, "ETIMEDOUT")

    def close(self):
        if self.closed:
            return
        self.closed = True
        s, self.session = self.session, None
        if s is not None:
            if self.broker.up:
                s.close()  # no DISCONNECT: the broker publishes the will
            else:
                s._gone()

    # -- the broker's side -----------------------------------------------------------------

    def _send(self, data):
        self.outbound += data

    def _drop(self, why):
        self.dropped = why
        self.broker.protocol_errors.append(why)
        self.eof = True
        self.inbound = bytearray()
        s, self.session = self.session, None
        if s is not None:
            s.close()  # an unclean end: the will goes out

    def _sync(self):
        # Before a read: the broker may have dropped the session (keepalive, outage), and
        # messages for it may be waiting.
        s = self.session
        if s is None or self.broker.silent:
            return
        self.broker.expire()
        if not s.connected or not self.broker.up:
            s._gone()
            self.session = None
            self.eof = True
            return
        while s.inbox:
            topic, payload = s.inbox.pop(0)
            t = topic.encode()
            body = _u16(len(t)) + t + payload
            self._send(b"\x30" + _remaining(len(body)) + body)  # delivered with QoS 0

    def _serve(self):
        while not self.eof and not self.broker.silent:
            buf = self.inbound
            size = shift = 0
            i = 1
            while True:
                if i >= len(buf):
                    return  # the fixed header is not complete yet
                b = buf[i]
                size |= (b & 0x7F) << shift
                i += 1
                if not b & 0x80:
                    break
                shift += 7
                if shift > 21:
                    return self._drop("remaining length longer than 4 bytes")
            if len(buf) < i + size:
                return
            kind = buf[0]
            body = bytes(buf[i : i + size])
            self.inbound = buf[i + size :]
            try:
                self._packet(kind, body)
            except OSError as e:  # the session's broker went down
                self._drop("%s" % (e,))
            except Exception as e:  # malformed
                self._drop("packet 0x%02x: %s: %s" % (kind, type(e).__name__, e))
            self._sync()

    def _packet(self, kind, body):
        r = _Reader(body)
        s = self.session
        if s is None:
            if kind != 0x10:
                raise ValueError("the first packet is not CONNECT")
            return self._connect(r)
        if kind >> 4 == 3:  # PUBLISH
            qos = kind >> 1 & 3
            if qos > 1:
                raise ValueError("QoS %d" % qos)
            topic = r.text()
            if not topic or "+" in topic or "#" in topic:
                raise ValueError("bad topic %r" % topic)
            pid = r.u16() if qos else 0
            s.publish(topic, r.rest(), bool(kind & 1), qos)
            if qos:
                self._send(b"\x40\x02" + _u16(pid))
        elif kind == 0x82:  # SUBSCRIBE
            pid = r.u16()
            granted = bytearray()
            while r.more():
                topic = r.text()
                qos = r.take(1)[0]
                if qos > 2:
                    raise ValueError("subscription QoS %d" % qos)
                s.subscribe(topic, qos)
                granted.append(min(qos, 1))
            if not granted:
                raise ValueError("SUBSCRIBE without a topic")
            self._send(b"\x90" + _remaining(2 + len(granted)) + _u16(pid) + bytes(granted))
        elif kind == 0xA2:  # UNSUBSCRIBE
            pid = r.u16()
            s._check()
            while r.more():
                topic = r.text()
                if topic in s.subs:
                    s.subs.remove(topic)
            self._send(b"\xb0\x02" + _u16(pid))
        elif kind == 0x40:  # PUBACK (we deliver QoS 0, but it is harmless)
            r.u16()
            r.end()
            s._check()
        elif kind == 0xC0 and not body:  # PINGREQ
            s.ping()
            self._send(b"\xd0\x00")
        elif kind == 0xE0 and not body:  # DISCONNECT: no will
            s.disconnect()
            self.session = None
            self.eof = True
        else:
            raise ValueError("unexpected packet")

    def _connect(self, r):
        if r.take(7) != b"\x00\x04MQTT\x04":
            raise ValueError("not MQTT 3.1.1")
        flags = r.take(1)[0]
        keepalive = r.u16()
        if flags & 1 or (flags & 0x40 and not flags & 0x80):
            raise ValueError("connect flags 0x%02x" % flags)
        client_id = r.text()
        will = None
        if flags & 4:
            topic = r.text()
            will = (topic, r.binary(), bool(flags & 0x20), flags >> 3 & 3)
        elif flags & 0x38:
            raise ValueError("will flags without a will")
        user = r.text() if flags & 0x80 else None
        password = _maybe_text(r.binary()) if flags & 0x40 else None
        r.end()
        s = FakeMqttClient(self.broker, client_id, self.peer[0], self.peer[1], user, password,
                           keepalive, self.tls)  # fmt: skip
        if will is not None:
            s.set_last_will(*will)
        s.connect()
        self.session = s
        MADE.append(s)
        del MADE[:-8]
        self._send(b"\x20\x02\x00\x00")


class FakeNet:
    """What umqtt's `socket` module is here: sockets to BROKER."""

    def socket(self):
        s = FakeSocket(BROKER)
        SOCKETS.append(s)
        del SOCKETS[:-8]
        return s

    def getaddrinfo(self, host, port):
        return [(2, 1, 0, "", (host, port))]


NET = FakeNet()


# -- TLS -----------------------------------------------------------------------------------------


class FakeSslSocket:
    """What MicroPython's SSLContext.wrap_socket returns, as umqtt uses it: read, write, close,
    and setblocking() handed to the raw socket; no settimeout (the raw socket has the timeout)."""

    def __init__(self, raw, server_hostname):
        self.raw = raw
        raw.tls = server_hostname

    def read(self, n):
        return self.raw.read(n)

    def write(self, buf, n=None):
        return self.raw.write(buf, n)

    def setblocking(self, flag):
        self.raw.setblocking(flag)

    def close(self):
        self.raw.close()


class FakeSslContext:
    def __init__(self, protocol):
        self.protocol = protocol
        self.verify_mode = None
        self.cafile = None

    def load_verify_locations(self, cafile=None):
        self.cafile = cafile

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    server_hostname=None):  # fmt: skip
        return FakeSslSocket(sock, server_hostname)


class FakeSslModule:
    """Stands in for MicroPython's ssl module: sys.modules["ssl"] = FakeSslModule."""

    PROTOCOL_TLS_CLIENT = 0
    CERT_NONE = 0
    CERT_REQUIRED = 2
    SSLContext = FakeSslContext
