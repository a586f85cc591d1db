# The ESP32 pieces a running node keeps: board facts for the node, the one-shot timer, the MQTT
# client factory and the mains loop. Startup (config, RTC state, safe mode, the first cycle,
# a battery wake) is firmware/board.py, which is dropped from RAM before the loop starts.
# The hardware objects themselves are made in main.py and handed in.

import gc
import sys
import time

import machine


def log(text):
    print("kmp2mqtt:", text)


class Esp32Platform:
    """Board facts and the radio, for the node (mains) and a wake (battery)."""

    def __init__(self, wlan, wdt, cfg, boots, stay_pin=None):
        self.wlan = wlan
        self.wdt = wdt
        self.wifi = cfg["wifi"]
        self.boots = boots
        self.clock = time
        self.wall_time = time.time
        self._pin = stay_pin  # machine.Pin with pull-up, held low to stay awake; or None

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
        log("stopped: REPL")
        return
    except Exception as e:
        crashed(e)
    if battery:
        # stay_awake cleared: remember that across the reset, then back to waking and sleeping
        from rtcstate import RtcState

        st = RtcState.load(rtc_memory)
        st.stay_awake = False
        st.save(rtc_memory)
        machine.reset()
