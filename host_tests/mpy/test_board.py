# The ESP32 entry point (main.py, firmware/board.py startup, firmware/device.py loop) under real
# MicroPython 1.29, on fake machine, network, ntptime and umqtt modules: the UART main.py makes,
# mains mode, a battery wake into deep sleep, and safe mode after repeated crashes.

import json
import os
import sys

sys.path.insert(0, "host_tests/fakes_esp32")

import machine
import network
from umqtt import simple

from mptest import run
from virtual_meter import FaultyLine, VirtualMeter

CONFIG = {
    "wifi": {"ssid": "home", "password": "pw"},
    "mqtt": {"host": "192.168.1.2", "user": "node", "password": "s3cret"},
    "update_interval": 60,
    "sensors": {"heat_energy": {}, "volume": {}},
    "buffer": {"capacity": 16, "path": "tmp/board_buf"},
}


def _setup(cfg, reset_cause=machine.PWRON_RESET):
    for d in ("/tmp", "/tmp/board_buf"):
        try:
            os.mkdir(d)
        except OSError:
            pass
    with open("config.json", "w") as f:
        json.dump(cfg, f)
    machine.LINE = FaultyLine(VirtualMeter(seed=4), seed=4, echo=True)
    machine.RESET_CAUSE = reset_cause
    machine.UARTS.clear()
    machine._arms[0] = 0
    simple.BROKER.messages.clear()
    sys.modules.pop("config", None)
    import board

    board.safe_start = lambda pin: True  # no 3 s window in tests
    return board


def _main(board):
    """Run main.py as MicroPython does at reset (board is what it will import)."""
    with open("main.py") as f:
        code = f.read()
    try:
        exec(code, {"__name__": "__main__"})
    except machine.Stop:
        return "stopped"
    except machine.DeepSleep as e:
        return e.ms
    return "returned"


def test_mains_mode_reads_and_publishes():
    machine.RTC_MEMORY = b""
    board = _setup(CONFIG)
    assert _main(board) == "stopped"
    uart_id, kw = machine.UARTS[0]
    assert uart_id == 1 and kw["baudrate"] == 1200 and kw["bits"] == 8
    assert kw["parity"] is None and kw["stop"] == 2 and kw["rx"] == 13 and kw["tx"] == 15
    topics = [m[0] for m in simple.BROKER.messages]
    assert "kmp2mqtt/kmp2mqtt_246f280a1b2c/state" in topics
    client = simple.MADE[-1]
    assert client.user == "node" and client.password == "s3cret" and client.server == "192.168.1.2"
    from rtcstate import RtcState

    assert RtcState.unpack(machine.RTC_MEMORY).crashes == 0  # cleared after the first cycle
    for name in ("board", "config"):  # startup code left RAM before the loop ran
        assert name not in sys.modules, name
    assert len([m for m in simple.BROKER.messages if m[0].endswith("/state")]) == 2


def test_battery_wake_reads_publishes_and_deep_sleeps():
    machine.RTC_MEMORY = b""
    cfg = dict(CONFIG)
    cfg["update_interval"] = "15min"
    cfg["battery"] = {"deep_sleep": True, "wake_deadline_s": 20}
    board = _setup(cfg, machine.DEEPSLEEP_RESET)
    network.CONNECTS.clear()
    ms = _main(board)
    assert isinstance(ms, int) and 880000 < ms <= 900000, ms
    assert machine.WDTS[-1] == 35000  # wake deadline + margin
    assert network.CONNECTS[-1]["bssid"] == b"\x02\x11\x22\x33\x44\x55"  # scanned, cached
    state = json.loads(simple.BROKER.last("kmp2mqtt/kmp2mqtt_246f280a1b2c/state"))
    assert state["heat_energy"] is not None
    assert simple.BROKER.wills == []
    from rtcstate import RtcState

    st = RtcState.unpack(machine.RTC_MEMORY)
    assert st.serial == 67051653 and st.crashes == 0 and st.bssid is not None


def test_battery_stay_awake_command_runs_the_mains_loop():
    machine.RTC_MEMORY = b""
    cfg = dict(CONFIG)
    cfg["update_interval"] = "15min"
    cfg["battery"] = {"deep_sleep": True}
    simple.BROKER.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b'{"stay_awake": true}'
    board = _setup(cfg, machine.DEEPSLEEP_RESET)
    try:
        assert _main(board) == "stopped"  # no deep sleep: the loop ran until the test stopped it
    finally:
        del simple.BROKER.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"]
    from rtcstate import RtcState

    assert RtcState.unpack(machine.RTC_MEMORY).stay_awake is True


def test_safe_mode_after_repeated_crashes_then_tries_again():
    from rtcstate import RtcState

    st = RtcState()
    st.crashes = 3
    machine.RTC_MEMORY = st.pack()
    board = _setup(CONFIG)
    machine.TIMER_PERIODS.clear()
    # The REPL, no crash loop, and no hardware (no watchdog): a one-shot timer resets after
    # 10 min (the fake fires it at once) so a node nobody attends starts again.
    assert _main(board) == "stopped"
    assert machine.UARTS == [] and machine.TIMER_PERIODS == [600000]
    assert RtcState.unpack(machine.RTC_MEMORY).crashes == 0  # the reset tries again


def test_safe_mode_on_battery_sleeps_an_hour_before_trying_again():
    from rtcstate import RtcState

    st = RtcState()
    st.crashes = 3
    machine.RTC_MEMORY = st.pack()
    cfg = dict(CONFIG)
    cfg["update_interval"] = "15min"
    cfg["battery"] = {"deep_sleep": True}
    board = _setup(cfg, machine.DEEPSLEEP_RESET)
    assert _main(board) == 3600000
    assert machine.UARTS == []


def test_ctrl_c_resets_into_the_repl_without_the_watchdog():
    from rtcstate import RtcState

    machine.RTC_MEMORY = b""
    board = _setup(CONFIG)

    def interrupted(request):  # Ctrl-C arrives while the first cycle talks to the meter
        raise KeyboardInterrupt

    machine.LINE = interrupted
    wdts = len(machine.WDTS)
    assert _main(board) == "stopped"  # machine.reset(): the running watchdog cannot be stopped
    assert len(machine.WDTS) == wdts + 1
    assert RtcState.unpack(machine.RTC_MEMORY).repl is True
    board = _setup(CONFIG)
    machine.UARTS.clear()
    machine.TIMER_PERIODS.clear()
    # The REPL, no watchdog, no UART; after 30 min (the fake timer fires at once) the node
    # starts again: a stray Ctrl-C must not silence it for good.
    assert _main(board) == "stopped"
    assert machine.TIMER_PERIODS == [1800000]
    assert len(machine.WDTS) == wdts + 1 and machine.UARTS == []
    st = RtcState.unpack(machine.RTC_MEMORY)
    assert st.repl is False and st.crashes == 0  # the next reset starts the node again


def test_ctrl_c_in_the_mains_loop_resets_into_the_repl():
    from rtcstate import RtcState

    machine.RTC_MEMORY = b""
    board = _setup(CONFIG)
    machine.TIMER_ARMS_BEFORE_STOP = 5
    meter = machine.LINE
    asked = [0]

    def interrupted_later(request):  # the first cycle (board) goes through; Ctrl-C in the loop
        asked[0] += 1
        if asked[0] > 3:  # GetType, GetSerialNo, GetRegister of the first cycle
            raise KeyboardInterrupt
        return meter(request)

    machine.LINE = interrupted_later
    try:
        assert _main(board) == "stopped"  # machine.reset()
    finally:
        machine.TIMER_ARMS_BEFORE_STOP = 2
    assert asked[0] == 4 and RtcState.unpack(machine.RTC_MEMORY).repl is True


def test_mains_clock_kept_by_ntp_retried_while_unknown_then_daily():
    import time

    import ntptime

    import device

    wlan = network.WLAN()
    p = device.Esp32Platform(wlan, machine.WDT(), CONFIG, 1)
    ntptime.CALLS.clear()
    p.keep_clock()
    assert ntptime.CALLS == []  # no Wi-Fi: nothing to ask
    wlan._connected = True
    ntptime.FAIL = True
    try:
        p.keep_clock()
        p.keep_clock()
        assert len(ntptime.CALLS) == 1  # failed: the next try in 5 minutes, not every cycle
        left = time.ticks_diff(p._clock_due, time.ticks_ms())
        assert 290000 < left <= 300000, left
        p._clock_due = time.ticks_add(time.ticks_ms(), -1)  # 5 minutes later
    finally:
        ntptime.FAIL = False
    p.keep_clock()
    assert len(ntptime.CALLS) == 2
    left = time.ticks_diff(p._clock_due, time.ticks_ms())
    assert 86390000 < left <= 86400000, left  # then once a day: the RTC drifts
    wlan._connected = False
    p._clock_due = time.ticks_add(time.ticks_ms(), -1)  # due while Wi-Fi is down
    p.keep_clock()
    assert p._clock_due is None  # due when Wi-Fi is back: no stale tick to wrap meanwhile
    wlan._connected = True
    p.keep_clock()
    assert len(ntptime.CALLS) == 3


def test_bad_config_stays_in_the_repl():
    machine.RTC_MEMORY = b""
    board = _setup({"mqtt": {"host": ""}})
    assert _main(board) == "returned"


run(globals(), "board")
