# A battery node's world across deep sleeps, for CPython and MicroPython tests: what survives a
# sleep (RTC memory bytes, the flash buffer, the meter, the broker, time) lives here; every wake
# builds a fresh node, link and MQTT session, as a real reset does.

import config
import wake
from fake_clock import FakeClock
from fake_mqtt import FakeBroker, FakeMqttClient
from fake_uart import FakeUart
from kmp.link import MeterLink
from lazybuffer import LazyBuffer
from mqttlink import MqttLink
from node import Node
from rtcstate import RtcState
from virtual_meter import FaultyLine, VirtualMeter

EPOCH_2026 = 1795435200

BATTERY_CONFIG = {
    "wifi": {"ssid": "home", "password": "secret"},
    "mqtt": {"host": "192.168.1.2"},
    "update_interval": "15min",
    "meter": {"read_budget": 0},  # (the budget's own tests set one)
    "sensors": {"heat_energy": {}, "volume": {}, "power": {}, "flow": {}},
    "battery": {"deep_sleep": True, "wake_deadline_s": 20},
    "buffer": {"capacity": 32, "path": "buffer"},
}


class Reset(BaseException):
    """The board resets in the middle of a wake (the watchdog, a crash; RTC memory kept): nothing after it runs."""


class FakeHw:
    """The board as a wake sees it: Wi-Fi (fast with a cached BSSID, slow with a scan, or never),
    the maintenance pin, the watchdog."""

    def __init__(self, clock, wall_time):
        self.clock = clock
        self.wall_time = wall_time
        self.wifi = "ok"  # "ok" or "never"
        self.network = False
        self.pin = False
        self.connects = []  # (cached, ms) per attempt
        self.boots = 1
        self.board_id = "246f280a1b2c"
        self.feeds = 0
        self.clock_syncs = 0
        self.clock_set = True  # False: a cold start before NTP (wall_time reads 2000-01-01)
        self.reset_in_radio = False  # True: the next connect ends in a reset (the watchdog)
        self.reset_at_wifi_off = False  # True: the next wake resets just before Wi-Fi goes off
        self.ntp_down = False  # True: NTP does not answer

    def wifi_connect(self, state, deadline):
        t0 = self.clock.ticks_ms()
        if self.wifi == "never":
            self.clock.sleep_ms(max(0, self.clock.ticks_diff(deadline, t0)))
            self.connects.append((state.bssid is not None, self.clock.ticks_ms() - t0))
            return False
        cached = state.bssid is not None
        self.clock.sleep_ms(300 if cached else 1500)  # a scan costs; BSSID+channel do not
        if self.reset_in_radio:
            self.reset_in_radio = False
            raise Reset("watchdog reset at the first transmit")
        state.bssid, state.channel = b"\x02\x11\x22\x33\x44\x55", 6
        self.connects.append((cached, self.clock.ticks_ms() - t0))
        self.network = True
        return True

    def sync_clock(self):
        self.clock_syncs += 1
        if self.ntp_down:
            return False
        self.clock_set = True
        return True

    def wifi_off(self):
        if self.reset_at_wifi_off:
            self.reset_at_wifi_off = False
            raise Reset("reset at the end of the radio phase")
        self.network = False

    def network_up(self):
        return self.network

    def stay_awake_pin(self):
        return self.pin

    def feed(self):
        self.feeds += 1

    def rssi(self):
        return -70 if self.network else None

    def free_heap(self):
        return None


class World:
    def __init__(self, buffer_path, cfg=None, seed=1, **line_kw):
        raw = dict(BATTERY_CONFIG)
        raw.update(cfg or {})
        self.cfg = config.validate(raw, target="esp32")
        self.clock = FakeClock()
        self.meter = VirtualMeter(seed=seed)
        self.line = FaultyLine(self.meter, seed=seed, **line_kw)
        self.broker = FakeBroker()
        self.hw = FakeHw(self.clock, self.wall_time)
        self.rtc = b""
        self.buffer_path = buffer_path
        self.logs = []
        self.awake_ms = []

    def wall_time(self):
        if not self.hw.clock_set:
            return self.clock.now // 1000  # the ESP32's epoch before NTP: "clock unknown"
        return EPOCH_2026 + self.clock.now // 1000

    def log(self, text):
        self.logs.append(text)
        if len(self.logs) > 100:
            self.logs.pop(0)

    def _set_rtc(self, data):
        self.rtc = bytes(data)

    def make_client(self, client_id, server, port, user, password, keepalive, tls):
        return FakeMqttClient(self.broker, client_id, server, port, user, password, keepalive, tls)

    def wake(self):
        """One wake from reset to deep sleep; returns (sleep ms or None, the node), or
        ("reset", node) when the board reset during the wake (RTC memory keeps what the wake
        saved before)."""
        link = MeterLink(FakeUart(self.clock, self.line, byte_ms=9.17), clock=self.clock)
        mqtt = MqttLink(self.make_client, self.cfg, self.clock, self.log)
        buffer = LazyBuffer(self.buffer_path, self.cfg["buffer"]["capacity"])
        node = Node(self.cfg, link, mqtt, self.clock, self.wall_time, self.hw, self.log, buffer)
        state = RtcState.load(lambda: self.rtc)
        t0 = self.clock.now
        try:
            ms = wake.run(node, state, self.hw, self.log, lambda: state.save(self._set_rtc))
        except Reset:
            self.clock.advance(2000)  # the reset and the boot
            return "reset", node
        state.save(self._set_rtc)
        self.awake_ms.append(self.clock.now - t0)
        if ms is not None:  # machine.deepsleep(ms): time passes, the meter goes on
            self.clock.advance(ms)
            self.meter.advance_ms(ms + self.awake_ms[-1])
        return ms, node

    def on(self, leaf, node_id="kmp2mqtt_246f280a1b2c"):
        t = "kmp2mqtt/%s/%s" % (node_id, leaf)
        return [m[1] for m in self.broker.messages if m[0] == t]
