"""umqtt.simple's MQTTClient API on top of paho-mqtt 2.2, for running the node on a host.

The firmware talks to MicroPython 1.29's frozen ``umqtt.simple.MQTTClient``; on a Linux host the
same calls land here. Semantics follow umqtt, not paho:

* nothing runs in the background: network I/O happens only inside a call (paho's ``loop()``
  driven by hand, no thread), so a keepalive ping goes out only while a call runs (paho
  sends one when the keepalive has elapsed) or on ``ping()``, which sends a PINGREQ at once
  as umqtt's does (``MqttLink.poll()`` calls it after half the keepalive without a send:
  umqtt never pings by itself); the PINGRESP is read by the next call;
* every blocking call has a deadline: the ``connect(timeout=...)`` value (30 s if None), and
  raises ``OSError`` (ETIMEDOUT) when it passes. umqtt with a socket timeout does the same;
* broker refusal raises ``MQTTException(rc)`` with the MQTT 3.1.1 CONNACK code (1..5);
* incoming messages are queued and handed to the callback one per ``check_msg()`` /
  ``wait_msg()``, as umqtt processes one packet per call; callback(topic: bytes, msg: bytes);
* ``disconnect()`` sends DISCONNECT (the broker discards the last will); ``sock.close()``
  drops the TCP connection without it (the broker publishes the will), as ``MqttLink.drop()``
  does with umqtt's socket.
"""

import errno
import ssl as _ssl
import time
from collections import deque

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

DEFAULT_TIMEOUT_S = 30.0


class _PahoClient(paho.Client):
    """paho's Client, remembering the raw MQTT 3.1.1 CONNACK return code: paho reports it as
    an MQTT 5 reason code, and for code 1 (protocol version) with reconnect_on_failure off it
    drops the connection without calling on_connect at all. umqtt raises MQTTException(code).
    (_handle_connack and _in_packet are paho 2.2 internals; requirements-dev.txt pins it.)"""

    connack_rc = None

    def _handle_connack(self):
        packet = self._in_packet["packet"]
        if len(packet) == 2:
            self.connack_rc = packet[1]
        return super()._handle_connack()


class MQTTException(Exception):
    pass


def _text(x):
    return x.decode("utf-8") if isinstance(x, (bytes, bytearray)) else x


def _bytes(x):
    return x.encode("utf-8") if isinstance(x, str) else bytes(x)


class _Sock:
    """Stands in for umqtt's ``self.sock``: ``close()`` drops the connection without a
    DISCONNECT, so the broker sees an unclean loss and publishes the last will."""

    def __init__(self, owner):
        self._owner = owner

    def close(self):
        self._owner._abort()

    def fileno(self):
        s = self._owner._paho.socket() if self._owner._paho else None
        return s.fileno() if s is not None else -1


class MQTTClient:
    def __init__(
        self,
        client_id,
        server,
        port=0,
        user=None,
        password=None,
        keepalive=0,
        ssl=None,
        ssl_params=None,
    ):
        if port == 0:
            port = 8883 if ssl else 1883
        self.client_id = client_id
        self.server = server
        self.port = port
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.ssl = ssl
        self.ssl_params = ssl_params or {}
        self.cb = None
        self.lw_topic = None
        self.lw_msg = None
        self.lw_qos = 0
        self.lw_retain = False
        self.sock = None
        self._paho = None
        self._timeout = DEFAULT_TIMEOUT_S
        self._inbox = deque()
        self._connack = None  # session-present flag once CONNACK accepted the connection
        self._lost = None  # why the connection ended, once it has
        self._acks = {}  # mid -> reason codes (SUBACK / UNSUBACK)

    # -- configuration (before connect) ----------------------------------------------------------

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        assert 0 <= qos <= 2
        assert topic
        self.lw_topic = topic
        self.lw_msg = msg
        self.lw_qos = qos
        self.lw_retain = retain

    # -- connection --------------------------------------------------------------------------

    def connect(self, clean_session=True, timeout=None):
        """Connect and wait for CONNACK; returns the session-present flag (0/1) like umqtt."""
        self._abort()
        self._timeout = DEFAULT_TIMEOUT_S if timeout is None else float(timeout)
        deadline = time.monotonic() + self._timeout
        client_id = _text(self.client_id)
        c = _PahoClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=paho.MQTTv311,
            reconnect_on_failure=False,  # umqtt never reconnects on its own
        )
        c.connect_timeout = self._timeout  # the TCP connect itself
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_ack
        c.on_unsubscribe = self._on_ack
        if self.user:
            c.username_pw_set(_text(self.user), _text(self.pswd) if self.pswd else None)
        if self.lw_topic:
            c.will_set(_text(self.lw_topic), _bytes(self.lw_msg), self.lw_qos, self.lw_retain)
        if self.ssl:
            c.tls_set_context(self._ssl_context())
        self._inbox.clear()
        self._connack = None
        self._lost = None
        self._acks = {}
        self._paho = c
        self.sock = _Sock(self)
        try:
            c.connect(self.server, self.port, self.keepalive)  # OSError: refused, unreachable
            while c.connack_rc is None:
                # A refusing broker sends CONNACK and closes: read the code before the loss.
                self._step(deadline, "CONNACK", lost_ok=True)
                if c.connack_rc is None and self._lost is not None:
                    self._raise_lost()
        except BaseException:
            self._abort()
            raise
        if c.connack_rc != 0 or self._connack is None:
            self._abort()
            raise MQTTException(c.connack_rc)
        return 1 if self._connack else 0

    def _ssl_context(self):
        if isinstance(self.ssl, _ssl.SSLContext):
            return self.ssl
        # ssl=True: umqtt's legacy form, with ssl_params for the certificates.
        p = self.ssl_params
        ctx = _ssl.create_default_context(cafile=p.get("cafile") or p.get("ca_certs"))
        if p.get("certfile"):
            ctx.load_cert_chain(p["certfile"], p.get("keyfile"))
        if p.get("cert_reqs") == _ssl.CERT_NONE:
            ctx.check_hostname = False
            ctx.verify_mode = _ssl.CERT_NONE
        return ctx

    def disconnect(self):
        """Clean DISCONNECT: the broker drops the last will."""
        c = self._require()
        deadline = time.monotonic() + min(self._timeout, 5.0)
        try:
            c.disconnect()  # written at once: the loop is not threaded
            while self._lost is None and c.socket() is not None:
                self._step(deadline, "DISCONNECT", lost_ok=True)
        finally:
            self._abort()

    def ping(self):
        """Send PINGREQ; the PINGRESP is consumed by the next call that reads."""
        c = self._require()
        self._check_rc(c._send_pingreq())  # paho has no public single-ping call

    # -- publish / subscribe ---------------------------------------------------------------

    def publish(self, topic, msg, retain=False, qos=0):
        """Publish; returns once written (QoS 0) or acknowledged (QoS 1)."""
        if qos not in (0, 1):
            raise ValueError("QoS %r: umqtt.simple supports 0 and 1" % (qos,))
        c = self._require()
        deadline = time.monotonic() + self._timeout
        info = c.publish(_text(topic), _bytes(msg), qos, bool(retain))
        self._check_rc(info.rc)
        while not info.is_published():
            self._step(deadline, "PUBACK" if qos else "publish")

    def subscribe(self, topic, qos=0):
        if self.cb is None:
            raise AssertionError("Subscribe callback is not set")
        c = self._require()
        deadline = time.monotonic() + self._timeout
        rc, mid = c.subscribe(_text(topic), qos)
        self._check_rc(rc)
        codes = self._wait_ack(mid, deadline, "SUBACK")
        if any(code.is_failure for code in codes):
            raise MQTTException(0x80)

    def unsubscribe(self, topic):
        c = self._require()
        deadline = time.monotonic() + self._timeout
        rc, mid = c.unsubscribe(_text(topic))
        self._check_rc(rc)
        self._wait_ack(mid, deadline, "UNSUBACK")

    def _wait_ack(self, mid, deadline, what):
        while mid not in self._acks:
            self._step(deadline, what)
        return self._acks.pop(mid)

    # -- incoming ----------------------------------------------------------------------------

    def check_msg(self):
        """Non-blocking: deliver one pending message to the callback; None if there is none."""
        c = self._require()
        if not self._inbox:
            # Read what the socket already holds (paho reads about a packet per pass).
            for _ in range(16):
                self._check_rc(c.loop(0))
                if self._lost is not None:
                    self._raise_lost()
                if self._inbox:
                    break
        return self._deliver()

    def wait_msg(self):
        """Block until one message arrives and deliver it; OSError(ETIMEDOUT) at the deadline."""
        self._require()
        deadline = time.monotonic() + self._timeout
        while not self._inbox:
            self._step(deadline, "a message")
        return self._deliver()

    def _deliver(self):
        if not self._inbox:
            return None
        topic, payload, qos, retain = self._inbox.popleft()
        if self.cb is not None:
            self.cb(topic, payload)
        return 0x30 | qos << 1 | retain  # the PUBLISH byte, as umqtt returns the op

    # -- paho callbacks (run inside our own loop() calls) ------------------------------------

    def _on_connect(self, client, userdata, flags, reason, properties):
        self._connack = flags.session_present

    def _on_disconnect(self, client, userdata, flags, reason, properties):
        self._lost = reason

    def _on_message(self, client, userdata, message):
        self._inbox.append(
            (
                message.topic.encode("utf-8"),
                bytes(message.payload),
                message.qos,
                1 if message.retain else 0,
            )
        )

    def _on_ack(self, client, userdata, mid, reason_codes, properties):
        self._acks[mid] = reason_codes

    # -- plumbing ----------------------------------------------------------------------------

    def _require(self):
        if self._paho is None:
            raise OSError(errno.ENOTCONN, "MQTT client is not connected")
        if self._lost is not None:
            self._raise_lost()
        return self._paho

    def _step(self, deadline, what, lost_ok=False):
        # One pass of paho's network loop, waiting at most until the deadline.
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            # The session stays as it is (umqtt's socket timeout leaves it too); callers such
            # as MqttLink drop the client after any OSError.
            raise OSError(errno.ETIMEDOUT, "MQTT: timed out waiting for %s" % what)
        rc = self._paho.loop(remaining)
        if lost_ok and self._lost is not None:
            return
        self._check_rc(rc)
        if self._lost is not None:
            self._raise_lost()

    def _check_rc(self, rc):
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            return
        if rc == MQTTErrorCode.MQTT_ERR_INVAL:
            raise ValueError("MQTT: invalid argument")
        self._abort()
        raise OSError(errno.ECONNRESET, "MQTT: connection lost (%s)" % paho.error_string(rc))

    def _raise_lost(self):
        reason = self._lost
        self._abort()
        raise OSError(errno.ECONNRESET, "MQTT: connection lost (%s)" % reason)

    def _abort(self):
        # Close the TCP connection without DISCONNECT and forget the session.
        c, self._paho = self._paho, None
        if c is None:
            return
        s = c.socket()
        if s is not None:
            try:
                s.close()
            except OSError:
                pass
        c.on_connect = c.on_disconnect = c.on_message = None
        c.on_subscribe = c.on_unsubscribe = None
