# Battery mode under real MicroPython 1.29: full deep-sleep cycles with a fake board; RTC memory
# bytes and the flash buffer (MEMFS) survive, every wake is a fresh node.

import json
import os

from mptest import run
from rtcstate import RtcState
from sleep_world import World


def _dir(name):
    try:
        os.mkdir("/tmp")
    except OSError:
        pass
    return "/tmp/" + name


def test_cycle_identity_once_guard_and_sleep():
    w = World(_dir("wake1"))
    sleeps = [w.wake()[0] for _ in range(3)]
    assert w.line.requests == 3 + 2
    for ms, awake in zip(sleeps, w.awake_ms):
        assert ms + awake == 900000
    w.meter._energy //= 2
    w.wake()
    assert json.loads(w.on("state")[-1])["heat_energy"] is None
    assert RtcState.unpack(w.rtc).guard_held == 1
    assert w.broker.wills == []


def test_outage_buffer_and_deadlines():
    w = World(_dir("wake2"))
    w.wake()
    w.broker.up = False
    for _ in range(4):
        w.wake()
    w.broker.up = True
    for _ in range(8):
        w.wake()
    seqs = [json.loads(p)["seq"] for p in w.on("history")]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 4, seqs
    w.hw.wifi = "never"
    ms, _ = w.wake()
    assert ms is not None and w.awake_ms[-1] <= 20100
    w.hw.wifi = "ok"
    w.broker.hang_clock = w.clock
    ms, _ = w.wake()
    assert ms is not None and w.awake_ms[-1] <= 21000


def test_a_reset_while_publishing_keeps_the_reading():
    w = World(_dir("wake_reset"))
    w.wake()
    w.hw.reset_in_radio = True
    assert w.wake()[0] == "reset"
    assert RtcState.unpack(w.rtc).reading is not None
    w.wake()
    history = [json.loads(p) for p in w.on("history")]
    assert len(history) == 1 and history[0]["heat_energy"] is not None
    assert RtcState.unpack(w.rtc).reading is None


def test_stay_awake_command():
    w = World(_dir("wake3"))
    w.wake()
    w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b'{"stay_awake": true}'
    ms, node = w.wake()
    assert ms is None and node.stay_awake


def test_config_edits_and_interval_commands_are_announced_once():
    import config
    from sleep_world import BATTERY_CONFIG

    w = World(_dir("wake4"))
    w.wake()

    def sent():
        n = len(w.broker.messages)
        w.wake()
        return [m for m in w.broker.messages[n:] if m[0].startswith("homeassistant/")]

    assert sent() == []
    raw = dict(BATTERY_CONFIG)
    raw["sensors"] = {"heat_energy": {"name": "District heat"}, "volume": {}, "power": {},
                      "flow": {}}  # fmt: skip
    w.cfg = config.validate(raw, "esp32")
    e1 = [json.loads(m[1]) for m in sent() if "heat_energy" in m[0]]
    assert e1[0]["name"] == "District heat"
    assert sent() == []
    w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b'{"interval": "1h"}'
    w.wake()
    del w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"]
    e1 = [json.loads(m[1]) for m in sent() if "heat_energy" in m[0]]
    assert e1[0]["expire_after"] == 10800
    assert sent() == []


run(globals(), "wake")
