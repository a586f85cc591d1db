# Battery mode: full deep-sleep cycles with a fake board (RTC memory bytes kept, deepsleep ends
# the wake, every wake a fresh node as after a reset).

import json

import pytest

import config
from rtcstate import RtcState
from sleep_world import BATTERY_CONFIG, World


def test_wakes_read_first_publish_and_sleep_until_the_next_slot(tmp_path):
    w = World(str(tmp_path / "buf"))
    sleeps = []
    for _ in range(5):
        ms, node = w.wake()
        sleeps.append(ms)
    # identity is read once, then kept in RTC memory: one meter request a wake after that
    assert w.line.requests == 3 + 4
    states = [json.loads(p) for p in w.on("state")]
    assert len(states) == 5 and all(s["heat_energy"] is not None for s in states)
    # a 15-minute period: sleep = interval - time awake
    for ms, awake in zip(sleeps, w.awake_ms):
        assert ms + awake == 900_000
    # a clean DISCONNECT each wake: the broker never published the last will
    assert w.broker.wills == [] and "offline" not in [m[1].decode() for m in w.broker.messages]
    # the first wake scans for the AP, later wakes use the cached BSSID and channel
    assert [c[0] for c in w.hw.connects] == [False, True, True, True, True]
    state = RtcState.unpack(w.rtc)
    assert state.wakes == 4 and state.serial == 67051653 and state.sw_revision == "K6"


def test_discovery_once_unless_the_units_change(tmp_path):
    w = World(str(tmp_path / "buf"))
    for _ in range(4):
        w.wake()
    configs = [m for m in w.broker.messages if m[0].startswith("homeassistant/")]
    assert len(configs) == 4 + 7  # one wake's worth: 4 sensors + 7 diagnostics
    w.meter._enc[0x3C] = (3, 4, -3)  # the meter now reports energy in MWh
    w.wake()
    e1 = [json.loads(m[1]) for m in w.broker.messages
          if m[0] == "homeassistant/sensor/kmp2mqtt_246f280a1b2c_heat_energy/config"]  # fmt: skip
    assert [c["unit_of_measurement"] for c in e1] == ["GJ", "MWh"]


def test_totals_guard_survives_deep_sleep(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.wake()
    w.meter._energy //= 2  # a bogus lower energy from now on
    for _ in range(2):
        w.wake()
    states = [json.loads(p) for p in w.on("state")]
    assert states[2]["heat_energy"] is None and states[3]["heat_energy"] is None
    assert RtcState.unpack(w.rtc).guard_held == 2
    w.wake()  # the third lower read in a row: a replaced meter
    assert json.loads(w.on("state")[-1])["heat_energy"] is not None


def test_broker_down_readings_buffered_and_radio_backs_off(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.broker.up = False
    for _ in range(6):
        w.wake()
    state = RtcState.unpack(w.rtc)
    assert state.wake_failures >= 2 and state.buffered == 6
    tries = len(w.hw.connects)
    assert tries < 1 + 6  # backoff: not every wake switched the radio on
    w.broker.up = True
    for _ in range(8):
        w.wake()
        if not RtcState.unpack(w.rtc).buffered and w.on("history"):
            break
    history = [json.loads(p) for p in w.on("history")]
    seqs = [h["seq"] for h in history]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 6
    times = [h["time"] for h in history]
    assert times == sorted(times)


def test_wake_deadline_holds_when_wifi_never_connects(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.hw.wifi = "never"
    ms, node = w.wake()
    assert w.awake_ms[-1] <= 20_000 + 100  # wake_deadline_s = 20
    assert ms is not None and node.buffer.pending() == 1


def test_wake_deadline_holds_when_the_broker_hangs(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.broker.hang_clock = w.clock
    ms, node = w.wake()
    assert w.awake_ms[-1] <= 20_000 + 1000
    assert ms is not None and node.buffer.pending() == 1


def test_retained_stay_awake_command_keeps_the_node_up(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b'{"stay_awake": true}'
    ms, node = w.wake()
    assert ms is None and node.stay_awake
    w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b'{"stay_awake": false}'
    ms, _ = w.wake()
    assert ms is not None


def test_maintenance_pin_keeps_the_node_up(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.hw.pin = True
    ms, _ = w.wake()
    assert ms is None


def test_interval_command_persists_across_sleeps(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b'{"interval": "1h"}'
    w.wake()
    del w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"]
    ms, node = w.wake()
    assert node.interval == 3600 and ms + w.awake_ms[-1] == 3_600_000


def test_corrupt_rtc_memory_is_a_cold_start(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.rtc = bytes([w.rtc[0] ^ 0xFF]) + w.rtc[1:]
    requests = w.line.requests
    ms, node = w.wake()
    assert ms is not None and w.line.requests - requests == 3  # identity read again
    assert RtcState.unpack(w.rtc).wakes == 0  # counting restarted


def test_meter_asleep_backoff_survives_sleep(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.line.asleep = True
    tries = []
    for _ in range(12):
        before = w.line.requests
        w.wake()
        tries.append(w.line.requests > before)
    assert tries[:3] == [True, True, True] and tries.count(True) < 12
    diag = json.loads(w.on("diag")[-1])
    assert diag["meter_reachable"] is False


def test_cold_start_sets_the_clock_by_ntp_once(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.hw.clock_set = False
    w.wake()
    w.wake()
    assert w.hw.clock_syncs == 1
    states = [json.loads(p) for p in w.on("state")]
    assert "time" not in states[0] and states[1]["time"].startswith("2026-11-23T")


def test_the_clock_is_synced_again_a_day_later(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    assert w.hw.clock_syncs == 1  # no sync recorded yet: the RTC may be anything
    for _ in range(94):  # 15-minute wakes: just under a day later
        w.wake()
    assert w.hw.clock_syncs == 1
    for _ in range(3):
        w.wake()
    assert w.hw.clock_syncs == 2  # the RTC drifts in deep sleep: NTP again after 24 h


def test_ntp_that_does_not_answer_is_tried_again_hourly_not_every_wake(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.hw.clock_set = False
    w.hw.ntp_down = True
    for _ in range(4):  # an hour of 15-minute wakes
        w.wake()
    assert w.hw.clock_syncs == 1  # each try costs up to a second of radio
    w.hw.ntp_down = False
    for _ in range(2):
        w.wake()
    assert w.hw.clock_syncs == 2 and w.hw.clock_set  # tried again an hour later
    w.wake()  # (a wake reads the meter before Wi-Fi: the first reading with a time)
    states = [json.loads(p) for p in w.on("state")]
    assert states[0]["clock"] == "unknown" and states[-1]["time"].startswith("2026-11-23T")


def test_a_reset_while_publishing_keeps_the_reading_for_history(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.hw.reset_in_radio = True  # a watchdog reset at the first transmit: the wake never ends
    ms, _ = w.wake()
    assert ms == "reset"
    assert RtcState.unpack(w.rtc).reading is not None  # that wake's reading: in RTC memory only
    w.wake()  # the next boot buffers it first, then publishes its own reading and the backlog
    history = [json.loads(p) for p in w.on("history")]
    states = [json.loads(p) for p in w.on("state")]
    assert len(history) == 1 and history[0]["seq"] == 1 and len(states) == 2
    assert states[0]["time"] < history[0]["time"] < states[1]["time"]  # the reset wake's
    assert history[0]["heat_energy"] is not None
    assert RtcState.unpack(w.rtc).reading is None


@pytest.mark.parametrize("broker_up", [True, False])
def test_a_reset_after_the_reading_is_out_does_not_buffer_it_again(tmp_path, broker_up):
    # Published (broker up) or buffered (broker down), then a reset late in the radio phase:
    # the next wake must not buffer the same reading a second time (a duplicate with a new seq).
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.broker.up = broker_up
    w.hw.reset_at_wifi_off = True
    assert w.wake()[0] == "reset"
    assert RtcState.unpack(w.rtc).reading is None  # released as soon as it was out
    w.broker.up = True
    w.wake()
    history = [json.loads(p) for p in w.on("history")]
    assert len(history) == (0 if broker_up else 1)


# -- discovery across deep sleep: announced again when what it says changes ----------------------

E1 = "homeassistant/sensor/kmp2mqtt_246f280a1b2c_heat_energy/config"


def configs_of_last_wake(w, since):
    return {m[0]: (json.loads(m[1]) if m[1] else None) for m in w.broker.messages[since:]
            if m[0].startswith("homeassistant/")}  # fmt: skip


def test_interval_command_is_announced_on_the_next_wake(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    assert json.loads(w.broker.retained[E1])["expire_after"] == 2700
    w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"] = b'{"interval": "1h"}'
    w.wake()  # the command arrives after this wake's publish
    del w.broker.retained["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"]
    n = len(w.broker.messages)
    w.wake()
    sent = configs_of_last_wake(w, n)
    assert sent[E1]["expire_after"] == 10800 and len(sent) == 4 + 7
    n = len(w.broker.messages)
    w.wake()
    assert configs_of_last_wake(w, n) == {}  # announced once


EDITS = [
    ("sensors", {"heat_energy": {"name": "District heat"}, "volume": {}, "power": {},
                 "flow": {}}),
    ("node_id", "heat_cellar"),
    ("update_interval", "30min"),
    ("mqtt", {"host": "192.168.1.2", "ha_version": "2025.4"}),
    ("mqtt", {"host": "192.168.1.2", "discovery_prefix": "ha"}),
    ("mqtt", {"host": "192.168.1.2", "base_topic": "heat"}),
    ("mqtt", {"host": "192.168.1.2", "discovery": False}),
    ("custom", [{"name": "E8", "command": "0x0061"}]),
]  # fmt: skip


@pytest.mark.parametrize("key, value", EDITS, ids=[e[0] for e in EDITS])
def test_a_config_edit_is_announced_on_the_next_wake(tmp_path, key, value):
    w = World(str(tmp_path / "buf"))
    w.wake()
    n = len(w.broker.messages)
    w.wake()
    assert configs_of_last_wake(w, n) == {}
    w.cfg = config.validate(dict(BATTERY_CONFIG, **{key: value}), target="esp32")
    n = len(w.broker.messages)
    w.wake()
    sent = configs_of_last_wake(w, n)
    assert sent, "config edit %s not announced" % key
    n = len(w.broker.messages)
    w.wake()
    assert configs_of_last_wake(w, n) == {}  # once
    if key == "mqtt" and value.get("discovery") is False:
        assert all(v is None for v in sent.values()) and len(sent) == 4 + 7  # removals only
    if key == "sensors":
        assert sent[E1]["name"] == "District heat"


def test_a_new_firmware_version_is_announced(tmp_path, monkeypatch):
    import mqttlink

    w = World(str(tmp_path / "buf"))
    w.wake()
    monkeypatch.setattr(mqttlink, "FIRMWARE_VERSION", "9.9.9")
    n = len(w.broker.messages)
    w.wake()
    assert configs_of_last_wake(w, n)[E1]["origin"]["sw_version"] == "9.9.9"


def test_a_wake_without_an_answer_does_not_force_the_next_announce(tmp_path):
    w = World(str(tmp_path / "buf"))
    w.wake()
    w.line.asleep = True
    w.wake()  # nothing read: no units this wake
    w.line.asleep = False
    n = len(w.broker.messages)
    w.wake()
    assert configs_of_last_wake(w, n) == {}


def test_a_battery_node_does_not_listen_for_home_assistant(tmp_path):
    w = World(str(tmp_path / "buf"))
    clients = []
    make = w.make_client
    w.make_client = lambda *a: clients.append(make(*a)) or clients[-1]
    w.wake()
    assert clients[-1].subs == ["kmp2mqtt/kmp2mqtt_246f280a1b2c/cmd"]


def test_disconnect_has_time_to_leave_before_wifi_goes_off(tmp_path, monkeypatch):
    import fake_mqtt

    w = World(str(tmp_path / "buf"))
    events = []
    disconnect = fake_mqtt.FakeMqttClient.disconnect

    def record_disconnect(self):
        events.append(("disconnect", w.clock.now))
        disconnect(self)

    monkeypatch.setattr(fake_mqtt.FakeMqttClient, "disconnect", record_disconnect)
    w.hw.wifi_off = lambda: events.append(("wifi_off", w.clock.now))
    w.wake()
    (what, t_disc), (what2, t_off) = events
    assert (what, what2) == ("disconnect", "wifi_off")
    assert 50 <= t_off - t_disc <= 500  # a short, bounded pause
    w.hw.wifi = "never"
    events.clear()
    w.wake()
    assert [e[0] for e in events] == ["wifi_off"]  # no session: no pause needed
