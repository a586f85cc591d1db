# The read budget under real MicroPython 1.29: the arithmetic, and a simulated day of a node
# (fake UART with the virtual MULTICAL, fake broker, fake clock), as host_tests/test_budget.py.

import json

from budget import SETUP_S, ReadBudget, requests_per_read
from mptest import run
from node_harness import BASE_CONFIG, Harness


def test_paced_interval_and_window():
    b = ReadBudget(24)
    assert b.interval_s(60, 1) == 3600 and b.interval_s(60, 2) == 7200
    assert ReadBudget(7).interval_s(60, 1, True) == 14400
    assert requests_per_read(9) == 2
    b.count(3, 10)
    assert b.used(10) == 0 and b.exchanges(10) == 3
    b.count(1, SETUP_S)
    assert b.used(SETUP_S) == 1


def test_hours_roll_out_of_the_count():
    b = ReadBudget(24)
    b.setup_until = 0
    for hour in range(24):
        b.count(1, hour * 3600 + 5)
    assert not b.allows(1, 23 * 3600 + 10) and b.allows(1, 24 * 3600)


def test_a_day_within_the_budget():
    cfg = dict(BASE_CONFIG)
    cfg["meter"] = {"port": "/dev/null", "read_budget": 24}
    h = Harness(cfg)
    h.cycle(0)
    t = 0
    while t < 86400:
        gap = h.node.next_interval()
        h.cycle(gap)
        t += gap
    assert h.line.requests <= 24 + 18, h.line.requests
    diag = json.loads(h.broker.retained[h.topic("diag")])
    assert diag["read_interval_s"] == 3600 and diag["budget_used_24h"] <= 24


run(globals(), "budget")
