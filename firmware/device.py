# The ESP32 pieces a running node keeps: board facts for the node, the one-shot timer, the MQTT
# client (umqtt.simple, made safe for UTF-8 text and with bounded waits) and the mains loop.
# Startup (config, RTC state, safe mode, the first cycle, a battery wake) is firmware/board.py,
# which is dropped from RAM before the loop starts. The hardware objects themselves are made in
# main.py and handed in.

import gc
import sys
import time
from binascii import hexlify

import machine
from umqtt.simple import MQTTClient  # frozen into the ESP32 v1.29 firmware

# The clock (mains): NTP again once a day (the RTC drifts), and every 5 minutes while it is
# unknown (e.g. the router came back after the node had given up waiting for Wi-Fi).
_RESYNC_MS = 86400000
_RETRY_MS = 300000


def log(text):
    print("kmp2mqtt:", text)


def set_clock():
    try:
        import ntptime  # frozen; its socket has a 1 s timeout

        ntptime.settime()
        return True
    except Exception as e:  # OSError on timeout: readings are marked as taken without a clock
        log("ntp: %s" % e)
        return False


def reset_into_repl(rtc_memory):
    """Ctrl-C once the watchdog runs: it cannot be stopped and would reset the REPL within
    a minute, so reset now and let the next boot stay in the REPL without starting the node."""
    from rtcstate import RtcState

    state = RtcState.load(rtc_memory)
    state.repl = True
    state.crashes = 0
    state.save(rtc_memory)
    log("stopped: resetting into the REPL (the watchdog cannot be stopped)")
    machine.reset()


class Esp32Platform:
    """Board facts and the radio, for the node (mains) and a wake (battery)."""

    def __init__(self, wlan, wdt, cfg, boots, stay_pin=None):
        self.wlan = wlan
        self.wdt = wdt
        self.wifi = cfg["wifi"]
        self.boots = boots
        # The node's default id: the base MAC, fixed for the board's life (node.default_node_id)
        self.board_id = hexlify(machine.unique_id()).decode()
        self.clock = time
        self.wall_time = time.time
        self._pin = stay_pin  # machine.Pin with pull-up, held low to stay awake; or None
        self._clock_due = None  # ticks of the next NTP sync (None: at the first chance)

    def rssi(self):
        try:
            return self.wlan.status("rssi") if self.wlan.isconnected() else None
        except Exception:
            return None

    def free_heap(self):
        return gc.mem_free()

    def feed(self):
        self.wdt.feed()

    def network_up(self):
        """Mains: True when Wi-Fi is connected; otherwise start a reconnect (non-blocking)."""
        if self.wlan.isconnected():
            return True
        try:
            self.wlan.connect(self.wifi["ssid"], self.wifi["password"])
        except OSError:
            pass
        return False

    def stay_awake_pin(self):
        return self._pin is not None and self._pin.value() == 0

    def keep_clock(self):
        """Mains, after every cycle: NTP when it is due and Wi-Fi is up."""
        now = time.ticks_ms()
        if self._clock_due is not None and time.ticks_diff(self._clock_due, now) > 0:
            return
        if not self.wlan.isconnected():
            self._clock_due = None  # due when Wi-Fi is back (a stale tick could wrap meanwhile)
            return
        ok = set_clock()
        self._clock_due = time.ticks_add(now, _RESYNC_MS if ok else _RETRY_MS)


class TimerTicker:
    def __init__(self, timer):
        self.timer = timer

    def arm(self, ms, callback):
        self.timer.init(mode=machine.Timer.ONE_SHOT, period=int(ms), callback=callback)

    def cancel(self):
        self.timer.deinit()


def _b(x):
    # umqtt sizes every field with len() and then writes it: len(str) counts characters but
    # write(str) sends UTF-8, so non-ASCII text (a sensor name, "°C") would corrupt the packet.
    return x.encode() if isinstance(x, str) else x


class _Sock:
    """umqtt's socket, with every wait bounded: umqtt's wait_msg() calls setblocking(True)
    after its first read, which on the ESP32 means no timeout at all (a dead broker would
    hang a QoS 1 ack until the watchdog resets the board); here that re-applies the timeout,
    on the raw socket (an SSL socket hands setblocking() to it and has no settimeout())."""

    def __init__(self, sock, raw, timeout_s):
        self.read = sock.read
        self.write = sock.write
        self.close = sock.close
        self._sock = sock
        self._raw = raw
        self._timeout_s = timeout_s

    def setblocking(self, flag):
        self._sock.setblocking(flag)
        if flag:
            self._raw.settimeout(self._timeout_s)


class _Tls:
    """The `ssl` umqtt is given: umqtt keeps only what wrap_socket returns, so remember the
    raw socket it wrapped (where the timeout lives)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.raw = None

    def wrap_socket(self, sock, server_hostname=None):
        self.raw = sock
        return self.ctx.wrap_socket(sock, server_hostname=server_hostname)


class Client(MQTTClient):
    """umqtt.simple.MQTTClient as the node needs it: text goes out as UTF-8 bytes, and no
    socket wait outlasts the connect timeout."""

    def set_last_will(self, topic, msg, retain=False, qos=0):
        super().set_last_will(_b(topic), _b(msg), retain, qos)

    def connect(self, clean_session=True, timeout=10):
        present = super().connect(clean_session, timeout)
        tls = self.ssl
        self.sock = _Sock(self.sock, tls.raw if tls else self.sock, timeout)
        return present

    def publish(self, topic, msg, retain=False, qos=0):
        super().publish(_b(topic), _b(msg), retain, qos)

    def ping(self):
        """PINGREQ, then wait (bounded, see _Sock) for the PINGRESP: umqtt's ping() only
        writes, so a half-open session would show only at the next QoS 1 ack."""
        super().ping()
        self.sock.setblocking(True)
        while self.wait_msg() is not None:
            pass  # a command came first: delivered to the callback, keep waiting

    def subscribe(self, topic, qos=0):
        super().subscribe(_b(topic), qos)


def make_client(client_id, server, port, user, password, keepalive, tls):
    ssl = None
    if tls:  # None or {"ca_file": path on the board's filesystem, "" for no certificate check}
        import ssl as _ssl

        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        if tls["ca_file"]:
            ctx.load_verify_locations(cafile=tls["ca_file"])
            ctx.verify_mode = _ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = _ssl.CERT_NONE  # encrypted, broker unverified; password still hidden
        ssl = _Tls(ctx)
    if user and not password:
        password = b""  # umqtt sends a password whenever a user is set: len(None) would fail
    return Client(_b(client_id), server, port, _b(user), _b(password), keepalive, ssl=ssl)


def crashed(e):
    """An unexpected exception: show it, give a USB console time to see it, start over (the
    crash counter in RTC memory leads to safe mode if it keeps happening)."""
    sys.print_exception(e)
    time.sleep_ms(5000)
    machine.reset()


def run_mains(node, platform, timer, rtc_memory):
    """The mains loop, after board.start() has done the first cycle. In battery mode (stay
    awake by command or pin) it ends when neither holds any more, and the node resets into
    waking and sleeping."""
    import loop

    battery = node.cfg["battery"]["deep_sleep"]
    try:
        loop.run(node, TimerTicker(timer), loop.Flag(), platform,
                 read_first=False,
                 should_stop=(lambda: not (node.stay_awake or platform.stay_awake_pin()))
                 if battery else None)  # fmt: skip
    except KeyboardInterrupt:
        reset_into_repl(rtc_memory)
    except Exception as e:
        crashed(e)
    if battery:
        # stay_awake cleared: remember that across the reset, then back to waking and sleeping
        from rtcstate import RtcState

        st = RtcState.load(rtc_memory)
        st.stay_awake = False
        st.save(rtc_memory)
        machine.reset()
