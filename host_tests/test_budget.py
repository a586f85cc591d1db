# The meter's read budget (firmware/budget.py): exchanges counted per hour, a setup window of
# quick reads, reads paced to the budget after it, and never more charged in 24 hours than
# the budget allows. Over a simulated day on the virtual MULTICAL the meter receives at most
# the budget plus what the setup window asked; a battery node keeps the count across deep sleep.

import json

from hypothesis import given, settings
from hypothesis import strategies as st

import ha_rules
import loop
from broker_fixtures import Subscriber, mosquitto_broker  # noqa: F401
from budget import SETUP_S, ReadBudget, requests_per_read
from kmpsim import Simulator
from node_harness import BASE_CONFIG, Harness
from node_process import NodeProcess
from rtcstate import RtcState
from sleep_world import World

DAY = 86400


def budget_config(**meter):
    cfg = dict(BASE_CONFIG)
    cfg["meter"] = dict(BASE_CONFIG["meter"], read_budget=24)
    cfg["meter"].update(meter)
    return cfg


# -- the arithmetic ------------------------------------------------------------------------------


def test_the_paced_interval():
    b = ReadBudget(24)
    assert b.interval_s(60, 1) == 3600  # Kamstrup: one reading an hour
    assert b.interval_s(7200, 1) == 7200  # a slower interval stands
    assert b.interval_s(60, 2) == 7200  # 9..16 registers: two requests a read
    assert ReadBudget(0).interval_s(60, 5) == 60  # no budget
    assert ReadBudget(7).interval_s(60, 1) == 12343  # 86400 / 7, rounded up
    assert ReadBudget(7).interval_s(60, 1, align=True) == 14400  # 6 a day: the same times daily
    assert ReadBudget(1440).interval_s(60, 1) == 60
    assert [requests_per_read(n) for n in (1, 8, 9, 16, 17)] == [1, 1, 2, 2, 3]


def test_the_setup_window_is_counted_but_not_charged():
    b = ReadBudget(24)
    b.count(3, 10)
    assert b.exchanges(10) == 3 and b.used(10) == 0 and b.allows(1000, 10)
    assert b.setup_left_s(10) == SETUP_S - 10
    b.count(1, SETUP_S)  # the window is over
    assert b.used(SETUP_S) == 1 and b.exchanges(SETUP_S) == 4
    b.open_setup(5000)  # read_now
    assert b.in_setup(5000 + SETUP_S - 1) and not b.in_setup(5000 + SETUP_S)


def test_exchanges_leave_the_count_after_24_hours():
    b = ReadBudget(24)
    b.setup_until = 0
    for hour in range(24):
        assert b.allows(1, hour * 3600 + 5)
        b.count(1, hour * 3600 + 5)
    assert b.used(23 * 3600 + 10) == 24 and not b.allows(1, 23 * 3600 + 10)
    assert b.used(24 * 3600) == 23 and b.allows(1, 24 * 3600)  # hour 0 has gone
    assert b.used(3 * DAY) == 0 and b.exchanges(3 * DAY) == 0  # a long silence
    b.count(2, 10)  # a clock that went back (a cold start): a fresh count
    assert b.used(10) == 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 7200), st.integers(1, 4)), min_size=1, max_size=200),
       st.integers(1, 48))  # fmt: skip
def test_never_more_charged_in_a_day_than_the_budget(steps, per_day):
    # reads at random gaps, each of a random number of exchanges, taken whenever allowed:
    # in every 24 clock hours the charged exchanges stay within the budget
    b = ReadBudget(per_day)
    b.setup_until = 0
    now = 0
    charged = []  # (hour, exchanges)
    for gap, exchanges in steps:
        now += gap
        if b.allows(exchanges, now):
            b.count(exchanges, now)
            charged.append((now // 3600, exchanges))
        hour = now // 3600
        assert sum(n for h, n in charged if h > hour - 24) == b.used(now) <= per_day


def test_no_retry_goes_past_the_budget():
    # The node caps the link at what is left of the budget: a silent meter gets one request,
    # not 1 + retries, and the read ends with the meter's own error, not a hang.
    h = Harness(budget_config())
    h.cycle(0)
    h.clock.advance(SETUP_S * 1000)  # past the setup window
    h.line.asleep = True
    left = 24 - h.node.budget.used(h.node.uptime_s())
    h.node.budget.charged[h.node.budget.hour % 24] += left - 1  # one exchange left
    before = h.line.requests
    h.cycle(3600)
    assert h.line.requests - before == 1  # retries: 2 configured, none sent
    assert h.node.budget.used(h.node.uptime_s()) == 24 and h.node.link.request_cap is None
    assert h.node.meter_reachable is False


# -- a node over a simulated day -------------------------------------------------------------------


def run_day(h, seconds=DAY):
    """Cycle the node at the intervals it asks for; the gaps between reads."""
    gaps = []
    h.cycle(0)
    t = 0
    while t < seconds:
        gap = h.node.next_interval()
        h.cycle(gap)
        t += gap
        gaps.append(gap)
    return gaps


def test_a_day_of_reads_stays_within_the_budget():
    h = Harness(budget_config())
    gaps = run_day(h)
    # 15 minutes of reads a minute apart (identity and 15 reads), then one an hour
    assert gaps[:15] == [60] * 15 and set(gaps[15:]) == {3600}
    setup_exchanges = 2 + 16
    assert h.line.requests <= 24 + setup_exchanges, h.line.requests
    states = h.on("state")
    diag = json.loads(h.broker.retained[h.topic("diag")])
    # a day on, the serial is read again (a swapped meter?): that exchange is paid by a read
    assert len(states) + diag["budget_held"] == 16 + len(gaps[15:])
    assert diag["read_budget"] == 24 and diag["read_interval_s"] == 3600
    assert diag["budget_used_24h"] <= 24 and diag["exchanges_24h"] <= h.line.requests
    assert diag["setup_left_s"] == 0 and diag["budget_held"] <= 1
    told = [line for line in h.logs if "read budget 24 exchanges a day" in line]
    assert len(told) <= 1  # (the log keeps the last 20 lines: said once, at the window's end)
    # Home Assistant is told the paced interval: readings are stale after 3 hours, not 3 min
    e1 = json.loads(h.broker.retained["homeassistant/sensor/kmp2mqtt_246f280a1b2c_heat_energy/"
                                      "config"])  # fmt: skip
    assert e1["expire_after"] == 3 * 3600


def test_the_log_says_once_that_the_budget_slows_the_reads():
    h = Harness(budget_config())
    for _ in range(17):
        h.cycle(60)
    told = [line for line in h.logs if "read budget 24 exchanges a day" in line]
    assert told == ["meter: read budget 24 exchanges a day (meter.read_budget): reading every "
                    "3600 s, not every 60 s; set meter.read_budget to 0 for a mains-powered "
                    "meter, or send read_now for 15 minutes of reads every 60 s"]  # fmt: skip


def test_retries_are_paid_for_by_later_reads():
    # a noisy link: retries count, so some reads wait, and the meter still gets no more
    h = Harness(budget_config(), corrupt_rate=0.5)
    run_day(h, 2 * DAY)
    day2 = h.node.budget
    assert day2.used(h.node.uptime_s()) <= 24
    assert day2.held > 0  # what the retries cost, later reads gave back


def test_read_now_opens_a_setup_window_of_quick_reads():
    h = Harness(budget_config())
    run_day(h, 2 * 3600)
    assert h.node.next_interval() == 3600
    before = h.node.budget.used(h.node.uptime_s())
    h.node.on_command(b"x", b'{"read_now": true}')
    h.cycle(1)
    assert h.node.next_interval() == 60
    for _ in range(10):
        h.cycle(60)
    assert h.node.budget.used(h.node.uptime_s()) == before  # not charged
    diag = h.node.diag()
    assert diag["read_interval_s"] == 60 and 0 < diag["setup_left_s"] < SETUP_S


def test_no_budget_reads_every_interval():
    h = Harness(budget_config(read_budget=0))
    gaps = run_day(h, 3 * 3600)
    assert set(gaps) == {60} and h.node.diag()["read_budget"] == 0


def test_the_loop_arms_the_paced_interval():
    h = Harness(budget_config())
    h.clock.advance(SETUP_S * 1000)  # the setup window is over
    armed = []

    class Ticker:
        def arm(self, ms, callback):
            armed.append(ms)
            callback()

    loop.run(h.node, Ticker(), loop.Flag(), h.platform, max_cycles=3)
    assert len(armed) == 2 and all(3590000 <= ms <= 3600000 for ms in armed), armed


# -- a battery node ----------------------------------------------------------------------------------


def test_a_battery_node_keeps_its_budget_across_deep_sleep(tmp_path):
    w = World(str(tmp_path / "buf"), cfg={"meter": {"read_budget": 24},
                                          "update_interval": "5min"})  # fmt: skip
    sleeps = []
    slept = 0
    while slept < DAY:
        ms, _ = w.wake()
        sleeps.append(ms // 1000)
        slept += ms // 1000
    # the setup window (15 min from the cold start) wakes every 5 minutes, then hourly
    assert sleeps[0] < 300 and max(sleeps) <= 3600 and sleeps[-1] > 3500
    assert w.line.requests <= 24 + 2 + 4, w.line.requests
    state = RtcState.unpack(w.rtc)
    assert state.budget is not None and sum(state.budget[3]) <= 24
    assert sum(state.budget[4]) == w.line.requests  # every exchange of the day, all wakes
    diag = json.loads(w.on("diag")[-1])
    assert diag["exchanges_24h"] == w.line.requests and diag["read_interval_s"] == 3600


# -- end to end: main.py, the virtual MULTICAL on a pty, mosquitto ---------------------------------


def test_a_new_node_reads_quickly_and_says_what_the_meter_pays(mosquitto_broker, tmp_path):
    # The shipped default budget (24 a day) with a 5 s interval: the setup window reads every
    # 5 s, and diag and the "Meter exchanges (24 h)" entity show the count, budget and pace.
    with Simulator(echo=True, time_scale=0) as sim:
        cfg = {
            "node_id": "budget",
            "mqtt": {"host": mosquitto_broker.host, "port": mosquitto_broker.port},
            "meter": {"port": sim.device},
            "update_interval": 5,
            "sensors": {"heat_energy": {}, "volume": {}},
        }
        path = tmp_path / "config.json"
        path.write_text(json.dumps(cfg))
        with Subscriber(mosquitto_broker, ["kmp2mqtt/budget/#", "homeassistant/#"]) as sub:
            node = NodeProcess(path, tmp_path)
            try:
                sub._wait(lambda: len(sub.on("kmp2mqtt/budget/state")) >= 3, 40, "3 states")
                diag = json.loads(sub.wait_for("kmp2mqtt/budget/diag").payload)
                entity = "homeassistant/sensor/budget_meter_exchanges/config"
                cfg_msg = json.loads(sub.wait_for(entity).payload)
            finally:
                node.stop()
        requests = sim.line.requests
    assert diag["read_budget"] == 24 and diag["read_interval_s"] == 5
    assert 0 < diag["setup_left_s"] <= SETUP_S and diag["budget_used_24h"] == 0
    assert 3 <= diag["exchanges_24h"] <= requests  # identity and the first read(s)
    assert ha_rules.problems(cfg_msg, "sensor") == []
    assert ha_rules.render(cfg_msg["value_template"], diag) == str(diag["exchanges_24h"])
    attributes = json.loads(ha_rules.render(cfg_msg["json_attributes_template"], diag))
    assert attributes == {"read_budget": 24, "budget_used_24h": 0, "read_interval_s": 5,
                          "setup_left_s": diag["setup_left_s"], "budget_held": 0}  # fmt: skip
    assert cfg_msg["expire_after"] == 3 * 3600 * 5  # diagnostics: diag every 5th paced read
