# The MQTT session: connect with a deadline and a last will, publish, poll for commands, and
# reconnect with exponential backoff and jitter, one attempt at a time: a broker outage never
# blocks the meter loop, and nothing retries forever (unlike umqtt.robust).

import random

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


FIRMWARE_VERSION = "0.3.0"

_BACKOFF_FIRST_S = 2
_BACKOFF_MAX_S = 300
# MQTT keepalive, told to the broker in CONNECT: a broker that hears nothing from the node for
# 1.5 x this (mosquitto) drops it and publishes the last will "offline". umqtt never pings by
# itself, so poll() sends a PINGREQ after half of it without sending anything.
KEEPALIVE_S = const(60)
_PING_AFTER_MS = const(KEEPALIVE_S * 500)


# What a CONNACK refusal (MQTT 3.1.1, 3.2.2.3) means to a user; umqtt and the host client raise
# MQTTException(code).
_REFUSED = (
    None,
    "the broker does not accept MQTT 3.1.1",
    "the broker rejects the client id (node_id)",
    "the broker is unavailable",
    "bad user name or password: check mqtt.user and mqtt.password",
    "not authorised: check mqtt.user and mqtt.password",
)


def _explain(e):
    """One line for the log and diag: a refusal in words, anything else as type and text."""
    code = e.args[0] if type(e).__name__ == "MQTTException" and e.args else None
    if isinstance(code, int) and 0 < code < len(_REFUSED):
        return "refused (CONNACK %d): %s" % (code, _REFUSED[code])
    return "%s: %s" % (type(e).__name__, e)


class MqttLink:
    def __init__(self, make_client, cfg, clock, log=print):
        """make_client(client_id, server, port, user, password, keepalive, tls) -> a client with
        the umqtt.simple API (umqtt on the ESP32, host.mqtt_paho on a host). tls is None (plain
        MQTT) or {"ca_file": path}, path "" for TLS without a certificate check."""
        self._make_client = make_client
        self._cfg = cfg
        self._clock = clock
        self._log = log
        self.client = None
        self.connected = False
        self.on_message = None  # f(topic_bytes, msg_bytes)
        self._backoff_s = 0
        self._next_try = None
        self.connects = 0
        self.failures = 0
        self.last_error = None
        self.status_topic = None
        self.subscriptions = ()
        self.timeout_s = 10  # socket deadline for connect and QoS 1 acks (a wake may lower it)
        self._sent = 0  # clock.ticks_ms() of the last packet sent (keepalive)
        self._attempts = 0  # failed connection attempts since the last connect
        # clock.ticks_ms() after which publish() sends nothing more (the cycle's share of the
        # interval, set by the node), or None; deferred counts what it held back.
        self.until = None
        self.deferred = 0
        self.ack_ms = 0  # how long the last QoS 1 publish took, PUBACK included
        self.pings = 0

    def configure(self, status_topic, subscriptions=()):
        self.status_topic = status_topic
        self.subscriptions = subscriptions

    def due(self):
        """True when a connection attempt is allowed now (backoff elapsed)."""
        if self._next_try is None:
            return True
        return self._clock.ticks_diff(self._clock.ticks_ms(), self._next_try) >= 0

    def connect(self, client_id):
        """One connection attempt, honouring the backoff; True when connected."""
        if self.connected:
            return True
        if not self.due():
            return False
        mq = self._cfg["mqtt"]
        try:
            client = self._make_client(
                client_id,
                mq["host"],
                mq["port"],
                mq["user"] or None,
                mq["password"] or None,
                KEEPALIVE_S,
                {"ca_file": mq["ca_file"]} if mq["tls"] else None,
            )
            self.client = client  # a failed attempt closes its socket (drop())
            if self.on_message is not None:
                client.set_callback(self.on_message)
            client.set_last_will(self.status_topic, b"offline", True, 1)
            t0 = self._clock.ticks_ms()
            client.connect(True, self.timeout_s)
            self.ack_ms = self._clock.ticks_diff(self._clock.ticks_ms(), t0)  # a first estimate
            client.publish(self.status_topic, b"online", True, 1)
            for topic in self.subscriptions:
                client.subscribe(topic, 1)
        except Exception as e:  # OSError, MQTTException: the broker or network said no
            self._attempts += 1
            self._failed(e, "connect to %s:%d: " % (mq["host"], mq["port"]))
            return False
        self.connected = True
        self.connects += 1
        if self._backoff_s:
            self._log("mqtt: connected to %s:%d again%s" % (mq["host"], mq["port"],
                      ", after %d failed attempt(s)" % self._attempts if self._attempts else ""))  # fmt: skip
        elif self.connects == 1:
            self._log("mqtt: connected to %s:%d" % (mq["host"], mq["port"]))
        self._attempts = 0
        self._sent = self._clock.ticks_ms()
        self._backoff_s = 0
        self._next_try = None
        return True

    def _failed(self, e, doing=""):
        self.failures += 1
        self.last_error = doing + _explain(e)
        self._log("mqtt: %s" % self.last_error)
        self.drop()
        # Exponential backoff with jitter, so a fleet does not reconnect in lockstep.
        self._backoff_s = min(_BACKOFF_MAX_S, max(_BACKOFF_FIRST_S, self._backoff_s * 2))
        delay_ms = self._backoff_s * 1000
        delay_ms = delay_ms // 2 + random.getrandbits(16) % (delay_ms // 2 + 1)
        self._next_try = self._clock.ticks_add(self._clock.ticks_ms(), delay_ms)

    def publish(self, topic, payload, retain=False, qos=0):
        """Publish; on failure the session is dropped and False returned (the caller keeps
        the reading)."""
        if not self.connected:
            return False
        clock = self._clock
        t0 = clock.ticks_ms()
        if self.until is not None:
            # Would this one end after the cycle's share? A QoS 1 publish takes about as long
            # as the last one did (its PUBACK). The session is fine, only slow: keep it.
            if clock.ticks_diff(self.until, t0) <= (self.ack_ms if qos else 0):
                self.deferred += 1
                return False
        try:
            self.client.publish(topic, payload, retain, qos)
        except Exception as e:
            self._failed(e)
            return False
        self._sent = clock.ticks_ms()
        if qos:
            self.ack_ms = clock.ticks_diff(self._sent, t0)
        return True

    def poll(self):
        """Keep the session alive (a ping after KEEPALIVE_S / 2 without a send) and deliver
        pending incoming messages (commands) without blocking. A dead connection shows up
        here or at the next publish, and the session is dropped for a reconnect."""
        if not self.connected:
            return
        try:
            now = self._clock.ticks_ms()
            if self._clock.ticks_diff(now, self._sent) >= _PING_AFTER_MS:
                self.client.ping()  # and its PINGRESP (device.Client waits for it, bounded)
                self._sent = now
                self.pings += 1
            self.client.check_msg()
        except Exception as e:
            self._failed(e)

    def drop(self):
        """Forget the session without a clean DISCONNECT (the broker sends the last will)."""
        client, self.client, self.connected = self.client, None, False
        if client is not None:
            try:
                client.sock.close()
            except Exception:
                pass

    def close(self):
        """Clean DISCONNECT: no last will (a planned stop or sleep is not a failure)."""
        client, self.client, self.connected = self.client, None, False
        if client is not None:
            try:
                client.disconnect()
            except Exception:
                pass
