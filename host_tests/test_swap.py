# A swapped meter (utilities replace them): the serial is read again once a day and on the
# first answer after a silence. A new serial takes over the device's identity at once, and its
# totals start afresh instead of being held back as "lower"; under the same serial a lower
# total is still held back.

import json

from node_harness import BASE_CONFIG, Harness
from sleep_world import World

E1_CONFIG = "homeassistant/sensor/kmp2mqtt_246f280a1b2c_heat_energy/config"


def swap(meter, serial=12345678):
    meter.serial = serial
    meter._energy //= 10  # the new meter starts far lower


def heat(h):
    return json.loads(h.on("state")[-1])["heat_energy"]


def test_a_meter_swapped_during_a_silence_is_noticed_when_it_answers():
    h = Harness()
    h.cycle()
    h.line.asleep = True  # the fitter at work: the head sees nothing
    for _ in range(3):
        h.cycle()
    swap(h.meter)
    h.line.asleep = False
    h.node.on_command(b"x", b'{"read_now": true}')
    h.cycle()
    assert "meter: replaced: serial 67051653 -> 12345678; its totals start afresh" in h.logs
    assert heat(h) is not None  # the new, lower total: published, not held back
    diag = h.node.diag()
    assert diag["meter_swaps"] == 1 and diag["previous_serial"] == 67051653
    device = json.loads(h.broker.retained[E1_CONFIG])["device"]
    assert device["serial_number"] == "12345678" and device["name"] == "Kamstrup 12345678"


def test_a_swap_without_a_silence_is_noticed_within_a_day():
    h = Harness()
    h.cycle()
    swap(h.meter)
    h.cycle(3600)
    assert heat(h) is None  # lower under the old serial as far as the node knows: held
    h.cycle(86400)  # a day since the serial was read
    assert h.node.serial == 12345678 and heat(h) is not None
    assert h.node.guard.held == 1 and h.node.meter_swaps == 1


def test_a_lower_total_under_the_same_serial_is_still_held_back():
    h = Harness()
    h.cycle()
    h.meter._energy //= 10  # a bogus low read; the serial does not change
    h.cycle(86400)  # the daily check reads the same serial
    assert heat(h) is None and h.node.meter_swaps == 0 and h.node.guard.held == 1


def test_the_daily_check_costs_one_exchange():
    cfg = dict(BASE_CONFIG)
    h = Harness(cfg)
    h.cycle()
    before = h.line.requests
    h.cycle(86400)
    assert h.line.requests - before == 2  # GetSerialNo, then the one GetRegister
    before = h.line.requests
    h.cycle(60)
    assert h.line.requests - before == 1


def test_a_battery_node_looks_for_a_swap_a_day_later(tmp_path):
    w = World(str(tmp_path / "buf"), cfg={"update_interval": "1h"})
    for _ in range(3):
        w.wake()
    swap(w.meter)
    for _ in range(24):  # the serial read at the cold start is a day old after these wakes
        _, node = w.wake()
        if node.serial == 12345678:
            break
    assert node.serial == 12345678 and node.meter_swaps == 1
    assert json.loads(w.on("state")[-1])["heat_energy"] is not None
