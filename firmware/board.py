# ESP32 startup: config, RTC state, safe mode, wiring the hardware that main.py made into the
# node, then either one battery wake (ending in deep sleep) or the first mains cycle. What the
# running loop needs is in firmware/device.py; main.py drops this module (and the config
# validator and RTC state code it loaded) before the loop starts, so their code leaves RAM.
#
# Both modes count crashes in RTC memory; several in a row and the node stays in the REPL (safe
# mode) instead of a crash loop.

import gc
import sys
import time

import machine

from device import Esp32Platform, crashed, log, make_client, reset_into_repl, set_clock

_WDT_MS = 90000  # mains: a backstop, longer than the worst bounded cycle (link, MQTT deadlines)
_SAFE_WINDOW_MS = 3000
_WIFI_DEADLINE_MS = 20000
_SAFE_MODE_CRASHES = 3
# Safe mode is a pause, not the end: nobody may be at the console. After this long in the REPL
# the node tries again (mains: a reset; battery: a deep sleep first, so a crash loop costs the
# cell one awake window per hour, not all of it).
SAFE_MODE_MS = 600000
_SAFE_MODE_SLEEP_MS = 3600000
# After Ctrl-C the REPL has no watchdog: a stray Ctrl-C (a USB host's 0x03) must not silence
# the node for good, so it starts again after this long unless someone stays.
_REPL_MS = 1800000


def safe_start(boot_pin):
    """A short window in which Ctrl-C (what mpremote sends) or the BOOT button keeps the REPL."""
    log("starting in %d s; Ctrl-C or hold BOOT for the REPL" % (_SAFE_WINDOW_MS // 1000))
    deadline = time.ticks_add(time.ticks_ms(), _SAFE_WINDOW_MS)
    try:
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            if boot_pin.value() == 0:
                log("BOOT held: staying in the REPL")
                return False
            time.sleep_ms(50)
    except KeyboardInterrupt:
        log("interrupted: staying in the REPL")
        return False
    return True


class BatteryPlatform(Esp32Platform):
    """Esp32Platform plus what a battery wake does with the radio: a fast reconnect, NTP on a
    cold start, switching Wi-Fi off before the sleep."""

    def __init__(self, wlan, wdt, cfg, boots, stay_pin=None):
        super().__init__(wlan, wdt, cfg, boots, stay_pin)
        self.battery = cfg["battery"]

    def wifi_connect(self, state, deadline):
        """Connect before the ticks deadline, with the BSSID cached in RTC memory (no scan of
        our own; MicroPython's connect() takes no channel, so the ESP-IDF still looks for that
        one AP) and a static IP when configured (no DHCP): BATTERY.md 4.5."""
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


def load_config():
    """The validated config (from the cache while config.json is unchanged), or None after
    printing what is wrong. The validator is dropped afterwards: the loop does not need it."""
    from node import forget_new_modules

    before = set(sys.modules)
    import settings

    try:
        return settings.load("config.json", "config.cache", "esp32")
    except Exception as e:
        config = sys.modules.get("config")
        if config is None or not isinstance(e, config.ConfigError):
            raise
        log("config.json is not valid; fix it with mpremote:\n%s" % e)
        return None
    finally:
        forget_new_modules(before)


def watchdog_ms(cfg):
    """The watchdog: the whole wake plus a margin on battery, a backstop on mains."""
    battery = cfg["battery"]
    return (battery["wake_deadline_s"] + 15) * 1000 if battery["deep_sleep"] else _WDT_MS


def _node(cfg, uart, mqtt, platform):
    from kmp.link import MeterLink
    from lazybuffer import LazyBuffer
    from node import Node

    m = cfg["meter"]
    # feed: a slow meter (timeout_ms and retries at their maximum) must not outlast the watchdog
    link = MeterLink(uart, m["address"], timeout_ms=m["timeout_ms"], retries=m["retries"],
                     clock=time, feed=platform.feed)  # fmt: skip
    buffer = LazyBuffer("/" + cfg["buffer"]["path"].strip("/"), cfg["buffer"]["capacity"])
    return Node(cfg, link, mqtt, time, time.time, platform, log, buffer)


def start(rtc_memory, woke, boot_pin, make_hardware):
    """Start the node. rtc_memory: machine.RTC().memory; woke: this reset is a deep-sleep wake;
    boot_pin: the BOOT button (machine.Pin, pulled up); make_hardware(cfg, watchdog_ms) ->
    (uart, wlan, wdt, stay_awake_pin or None, timer), made by main.py.

    Returns None to stay in the REPL (bad config, BOOT held), or ("safe", repl_ms, sleep_ms)
    after repeated crashes or a Ctrl-C: the REPL for repl_ms, then main.py resets (sleep_ms
    None) or deep-sleeps sleep_ms. A battery wake ends in machine.deepsleep() and does not return.
    Otherwise (mains, or a battery node told to stay awake) the first cycle is done and it
    returns (node, platform, timer, rtc_memory) for device.run_mains."""
    from rtcstate import RtcState

    state = RtcState.load(rtc_memory)
    if state.repl:
        state.repl = False
        state.save(rtc_memory)
        log("REPL, as asked with Ctrl-C (no watchdog running); the node starts again in %d min"
            " (machine.Timer(0).deinit() to stay)" % (_REPL_MS // 60000))  # fmt: skip
        return ("safe", _REPL_MS, None)
    cfg = load_config()
    if cfg is None:
        return None
    if state.crashes >= _SAFE_MODE_CRASHES:
        log(
            "safe mode: %d crashes in a row; the REPL for %d min, then trying again"
            " (machine.Timer(0).deinit() to stay)" % (state.crashes, SAFE_MODE_MS // 60000)
        )
        state.crashes = 0
        state.save(rtc_memory)
        return ("safe", SAFE_MODE_MS,
                _SAFE_MODE_SLEEP_MS if cfg["battery"]["deep_sleep"] else None)  # fmt: skip
    if not woke and not safe_start(boot_pin):
        return None
    if not woke:
        state.boots += 1
    state.crashes += 1  # cleared once this run has done a good cycle
    state.save(rtc_memory)
    battery = cfg["battery"]["deep_sleep"]
    uart, wlan, wdt, stay_pin, timer = make_hardware(cfg, watchdog_ms(cfg))
    make_platform = BatteryPlatform if battery else Esp32Platform
    platform = make_platform(wlan, wdt, cfg, state.boots, stay_pin)
    from mqttlink import MqttLink

    node = _node(cfg, uart, MqttLink(make_client, cfg, time, log), platform)
    gc.collect()
    try:
        if battery:
            import wake

            sleep_ms = wake.run(node, state, platform, log, lambda: state.save(rtc_memory))
            state.crashes = 0
            state.save(rtc_memory)
            if sleep_ms is not None:
                machine.deepsleep(sleep_ms)  # the wake ends here; the next one starts at reset
            log("staying awake (command or pin): mains loop until told otherwise")
        else:
            if connect_wifi(wlan, cfg["wifi"]):
                platform.keep_clock()  # NTP now; again daily, or soon if this one failed
            else:
                log("wifi: not connected yet; reading anyway, retrying in the loop (and NTP)")
            platform.feed()
            node.cycle()
            state.crashes = 0
            state.save(rtc_memory)
    except KeyboardInterrupt:
        reset_into_repl(rtc_memory)
    except Exception as e:
        crashed(e)
    return node, platform, timer, rtc_memory
