# ESP32 wiring: the only place that creates hardware (UART, WLAN, watchdog, timer) and hands it
# down to the node. Runs from main.py on the device.

import gc
import sys
import time

import machine
import network

_SAFE_PIN = 0  # the BOOT button on most ESP32 boards: hold it at reset to stay in the REPL
_SAFE_WINDOW_MS = 3000
_WIFI_DEADLINE_MS = 20000
_WDT_MS = 90000  # backstop only: longer than the worst bounded cycle (link and MQTT deadlines)
_BOOTS_FILE = "boots.txt"


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


def count_boot():
    try:
        with open(_BOOTS_FILE) as f:
            boots = int(f.read()) + 1
    except (OSError, ValueError):
        boots = 1
    try:
        with open(_BOOTS_FILE, "w") as f:
            f.write(str(boots))
    except OSError:
        pass
    return boots


class Esp32Platform:
    def __init__(self, wlan, wdt, wifi_cfg, boots):
        self.wlan = wlan
        self.wdt = wdt
        self.wifi = wifi_cfg
        self.boots = boots

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
        """True when Wi-Fi is connected; otherwise start a reconnect (non-blocking)."""
        if self.wlan.isconnected():
            return True
        try:
            self.wlan.connect(self.wifi["ssid"], self.wifi["password"])
        except OSError:
            pass
        return False


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
    if tls:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_NONE  # no CA bundle on the device; the password is still hidden
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


def main():
    import config

    try:
        cfg = config.load("config.json", target="esp32")
    except config.ConfigError as e:
        log("config.json is not valid; fix it with mpremote:\n%s" % e)
        return
    if not safe_start():
        return
    boots = count_boot()
    wdt = machine.WDT(timeout=_WDT_MS)
    m = cfg["meter"]
    uart = machine.UART(m["uart"], baudrate=1200, bits=8, parity=None, stop=2,
                        rx=m["rx_pin"], tx=m["tx_pin"], timeout=0, rxbuf=512)  # fmt: skip
    wlan = network.WLAN(network.STA_IF)
    if connect_wifi(wlan, cfg["wifi"]):
        set_clock()
    else:
        log("wifi: not connected yet; reading anyway, retrying in the loop")
    wdt.feed()

    import loop
    from buffer import ReadingBuffer
    from kmp.link import MeterLink
    from mqttlink import MqttLink
    from node import Node

    link = MeterLink(uart, m["address"], timeout_ms=m["timeout_ms"], retries=m["retries"],
                     clock=time)  # fmt: skip
    mqtt = MqttLink(make_client, cfg, time, log)
    platform = Esp32Platform(wlan, wdt, cfg["wifi"], boots)
    buffer = ReadingBuffer("/" + cfg["buffer"]["path"].strip("/"), cfg["buffer"]["capacity"])
    node = Node(cfg, link, mqtt, time, time.time, platform, log, buffer)
    gc.collect()
    try:
        loop.run(node, TimerTicker(machine.Timer(0)), loop.Flag(), platform)
    except KeyboardInterrupt:
        log("stopped: REPL")
    except Exception as e:
        sys.print_exception(e)
        time.sleep_ms(5000)
        machine.reset()
