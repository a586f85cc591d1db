# ESP32 wiring: the only place that creates hardware (UART, WLAN, RTC, watchdog, timer) and
# hands it down to the node. Runs from main.py on the device.
#
# Two modes: mains (always on, Wi-Fi connected, a timer loop) and battery (config
# battery.deep_sleep: one wake per reading, then machine.deepsleep). Both count crashes in RTC
# memory; several in a row and the node stays in the REPL (safe mode) instead of a crash loop.

import gc
import sys
import time

import machine
import network

_SAFE_PIN = 0  # the BOOT button on most ESP32 boards: hold it at reset to stay in the REPL
_SAFE_WINDOW_MS = 3000
_WIFI_DEADLINE_MS = 20000
_WDT_MS = 90000  # mains: a backstop, longer than the worst bounded cycle (link, MQTT deadlines)
_SAFE_MODE_CRASHES = 3


def log(text):
    print("kmp2mqtt:", text)


def safe_start():
    """A short window in which Ctrl-C (what mpremote sends) or the BOOT button keeps the REPL."""
    pin = machine.Pin(_SAFE_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
    log("starting in %d s; Ctrl-C or hold BOOT (GPIO%d) for the REPL" % (_SAFE_WINDOW_MS // 1000,
                                                                         _SAFE_PIN))  # fmt: skip
    deadline = time.ticks_add(time.ticks_ms(), _SAFE_WINDOW_MS)
    try:
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            if pin.value() == 0:
                log("BOOT held: staying in the REPL")
                return False
            time.sleep_ms(50)
    except KeyboardInterrupt:
        log("interrupted: staying in the REPL")
        return False
    return True


class Esp32Platform:
    """Board facts and the radio, for the node (mains) and a wake (battery)."""

    def __init__(self, wlan, wdt, cfg, boots):
        self.wlan = wlan
        self.wdt = wdt
        self.wifi = cfg["wifi"]
        self.battery = cfg["battery"]
        self.boots = boots
        self.clock = time
        self.wall_time = time.time
        pin = self.battery["stay_awake_pin"]
        self._pin = None if pin is None else machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)

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

    def wifi_connect(self, state, deadline):
        """Battery: connect before the ticks deadline, with the BSSID and channel cached in RTC
        memory (no scan) and a static IP when configured (no DHCP): BATTERY.md 4.5."""
        wlan = self.wlan
        wlan.active(True)
        b = self.battery
        if b["ip"]:
            wlan.ifconfig((b["ip"], b["netmask"], b["gateway"], b["dns"] or b["gateway"]))
        if state.bssid is None:
            self._scan(state)
        try:
            if state.bssid is not None:
                wlan.connect(self.wifi["ssid"], self.wifi["password"], bssid=state.bssid)
            else:
                wlan.connect(self.wifi["ssid"], self.wifi["password"])
        except OSError as e:
            log("wifi: %s" % e)
            return False
        while not wlan.isconnected():
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                state.forget_network()  # the AP may have moved: scan next time
                return False
            time.sleep_ms(20)
        return True

    def _scan(self, state):
        try:
            best = None
            for ssid, bssid, channel, rssi, _, _ in self.wlan.scan():
                if ssid.decode() == self.wifi["ssid"] and (best is None or rssi > best[2]):
                    best = (bssid, channel, rssi)
            if best is not None:
                state.bssid, state.channel = bytes(best[0]), best[1]
        except (OSError, UnicodeError):
            pass

    def sync_clock(self):
        return set_clock()

    def wifi_off(self):
        try:
            self.wlan.disconnect()
        except OSError:
            pass
        self.wlan.active(False)


class TimerTicker:
    def __init__(self, timer):
        self.timer = timer

    def arm(self, ms, callback):
        self.timer.init(mode=machine.Timer.ONE_SHOT, period=int(ms), callback=callback)

    def cancel(self):
        self.timer.deinit()


def make_client(client_id, server, port, user, password, keepalive, tls):
    from umqtt.simple import MQTTClient  # frozen into the ESP32 v1.29 firmware

    ctx = None
    if tls:  # None or {"ca_file": path on the board's filesystem, "" for no certificate check}
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls["ca_file"]:
            ctx.load_verify_locations(cafile=tls["ca_file"])
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE  # encrypted, broker unverified; password still hidden
    return MQTTClient(client_id, server, port, user, password, keepalive, ssl=ctx)


def connect_wifi(wlan, wifi_cfg):
    wlan.active(True)
    if wlan.isconnected():
        return True
    wlan.connect(wifi_cfg["ssid"], wifi_cfg["password"])
    deadline = time.ticks_add(time.ticks_ms(), _WIFI_DEADLINE_MS)
    while not wlan.isconnected():
        if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
            return False
        time.sleep_ms(100)
    return True


def set_clock():
    try:
        import ntptime

        ntptime.settime()
        return True
    except Exception as e:  # OSError on timeout: readings are marked as taken without a clock
        log("ntp: %s" % e)
        return False


def _node(cfg, uart, mqtt, platform):
    from kmp.link import MeterLink
    from lazybuffer import LazyBuffer
    from node import Node

    m = cfg["meter"]
    link = MeterLink(uart, m["address"], timeout_ms=m["timeout_ms"], retries=m["retries"],
                     clock=time)  # fmt: skip
    buffer = LazyBuffer("/" + cfg["buffer"]["path"].strip("/"), cfg["buffer"]["capacity"])
    return Node(cfg, link, mqtt, time, time.time, platform, log, buffer)


def load_config():
    """The validated config, or None after printing what is wrong. The validator (~14 KB as
    .mpy) is dropped afterwards: the loop does not need it (an interval command reloads it)."""
    import config

    try:
        return config.load("config.json", target="esp32")
    except config.ConfigError as e:
        log("config.json is not valid; fix it with mpremote:\n%s" % e)
        return None
    finally:
        sys.modules.pop("config", None)


def main():
    from rtcstate import RtcState

    cfg = load_config()
    if cfg is None:
        return
    rtc = machine.RTC()
    state = RtcState.load(rtc.memory)
    woke = machine.reset_cause() == machine.DEEPSLEEP_RESET
    if state.crashes >= _SAFE_MODE_CRASHES:
        log("safe mode: %d crashes in a row; staying in the REPL (reset to try again)"
            % state.crashes)  # fmt: skip
        state.crashes = 0
        state.save(rtc.memory)
        return
    if not woke and not safe_start():
        return
    if not woke:
        state.boots += 1
    state.crashes += 1  # cleared once this run has done a good cycle
    state.save(rtc.memory)
    battery = cfg["battery"]["deep_sleep"]
    wdt = machine.WDT(
        timeout=(cfg["battery"]["wake_deadline_s"] + 15) * 1000 if battery else _WDT_MS
    )
    m = cfg["meter"]
    uart = machine.UART(m["uart"], baudrate=1200, bits=8, parity=None, stop=2,
                        rx=m["rx_pin"], tx=m["tx_pin"], timeout=0, rxbuf=512)  # fmt: skip
    wlan = network.WLAN(network.STA_IF)
    platform = Esp32Platform(wlan, wdt, cfg, state.boots)
    from mqttlink import MqttLink

    mqtt = MqttLink(make_client, cfg, time, log)
    node = _node(cfg, uart, mqtt, platform)
    gc.collect()
    try:
        if battery:
            import wake

            sleep_ms = wake.run(node, state, platform, log)
            state.crashes = 0
            state.save(rtc.memory)
            if sleep_ms is not None:
                machine.deepsleep(sleep_ms)  # the wake ends here; the next one starts at reset
            log("staying awake (command or pin): mains loop until told otherwise")
        run_mains(node, wlan, platform, state, rtc)
    except KeyboardInterrupt:
        log("stopped: REPL")
    except Exception as e:
        sys.print_exception(e)
        time.sleep_ms(5000)
        machine.reset()


def run_mains(node, wlan, platform, state, rtc):
    import loop

    if connect_wifi(wlan, node.cfg["wifi"]):
        set_clock()
    else:
        log("wifi: not connected yet; reading anyway, retrying in the loop")
    platform.feed()

    def first_cycle_done():
        state.crashes = 0
        state.save(rtc.memory)

    battery = node.cfg["battery"]["deep_sleep"]
    loop.run(node, TimerTicker(machine.Timer(0)), loop.Flag(), platform,
             after_first=first_cycle_done,
             should_stop=(lambda: not (node.stay_awake or platform.stay_awake_pin()))
             if battery else None)  # fmt: skip
    if battery:
        # stay_awake cleared: remember that across the reset, then back to waking and sleeping
        from rtcstate import RtcState

        st = RtcState.load(rtc.memory)
        st.stay_awake = False
        st.save(rtc.memory)
        machine.reset()
