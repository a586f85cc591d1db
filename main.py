# kmp2mqtt entry point. On the ESP32 MicroPython runs this after boot.py; on a Linux host:
#   .venv/bin/python main.py --config FILE
import sys


def make_hardware(cfg, watchdog_ms):
    """Every hardware object the node uses, made here and handed down (nothing below creates
    any): the meter's UART at 1200 8N2, the Wi-Fi station, the watchdog, the stay-awake pin and
    the loop's timer."""
    import machine
    import network

    m = cfg["meter"]
    pin = cfg["battery"]["stay_awake_pin"]
    return (
        machine.UART(m["uart"], baudrate=1200, bits=8, parity=None, stop=2,
                     rx=m["rx_pin"], tx=m["tx_pin"], timeout=0, rxbuf=512),
        network.WLAN(network.STA_IF),
        machine.WDT(timeout=watchdog_ms),
        None if pin is None else machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP),
        machine.Timer(0),
    )  # fmt: skip


def run_on_esp32():
    import gc

    import machine

    import board

    rtc = machine.RTC()
    boot_pin = machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP)  # BOOT: hold for the REPL
    woke = machine.reset_cause() == machine.DEEPSLEEP_RESET
    running = board.start(rtc.memory, woke, boot_pin, make_hardware)
    if running is not None and running[0] == "safe":
        safe_mode(*running[1:])
        return
    # Startup is over: its code (and the RTC state and wake code it used) leaves RAM; the
    # config validator already went in board.load_config().
    del board
    for name in ("board", "rtcstate", "wake", "fingerprint"):
        sys.modules.pop(name, None)
    gc.collect()
    if running is not None:
        import device

        device.run_mains(*running)


_safe_timer = None


def safe_mode(repl_ms, sleep_ms):
    """The REPL for repl_ms, then try again: a reset, or a deep sleep of sleep_ms first."""
    import machine

    def try_again(timer):
        if sleep_ms:
            machine.deepsleep(sleep_ms)
        machine.reset()

    global _safe_timer
    _safe_timer = machine.Timer(0)  # kept referenced while the REPL runs
    _safe_timer.init(mode=machine.Timer.ONE_SHOT, period=repl_ms, callback=try_again)


if sys.implementation.name == "micropython":
    run_on_esp32()
else:
    # (string operations, not os.path: this file is type-checked against MicroPython's stubs)
    _root = __file__.rpartition("/")[0] or "."
    for _p in ("/lib", "/firmware", ""):
        sys.path.insert(0, _root + _p)
    from host.runtime import main

    sys.exit(main(sys.argv[1:]))
