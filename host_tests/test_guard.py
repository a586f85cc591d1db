# Totals guard and wall-clock helpers.

from hypothesis import given
from hypothesis import strategies as st

from guard import CONFIRM_READS, TotalsGuard, compare
from timefmt import clock_known, iso_utc, seconds_to_next


def test_compare_exact_decimals():
    assert compare((12345, -3), (12345, -3)) == 0
    assert compare((123450, -4), (12345, -3)) == 0
    assert compare((12346, -3), (12345, -3)) == 1
    assert compare((1, 3), (999, 0)) == 1
    assert compare((-5, 0), (0, 0)) == -1


def test_lower_total_is_held_back():
    g = TotalsGuard()
    assert g.accept("heat_energy", 100000, -3)
    assert g.accept("heat_energy", 100001, -3)
    assert not g.accept("heat_energy", 0, 0)  # a bad read of 0 would book a meter's worth
    assert g.held == 1
    assert g.accept("heat_energy", 100002, -3)  # back to normal: accepted, pending forgotten


def test_meter_replacement_needs_consecutive_lower_reads():
    g = TotalsGuard()
    g.accept("volume", 5000000, -2)
    results = [g.accept("volume", 100 + k, -2) for k in range(CONFIRM_READS)]
    assert results == [False] * (CONFIRM_READS - 1) + [True]
    assert g.replacements == 1 and g.last["volume"] == (100 + CONFIRM_READS - 1, -2)
    assert g.accept("volume", 200, -2)


def test_interrupted_lower_run_starts_over():
    g = TotalsGuard(confirm=3)
    g.accept("e", 1000, 0)
    assert not g.accept("e", 10, 0)
    assert not g.accept("e", 11, 0)
    assert g.accept("e", 1001, 0)  # a good read in between resets the count
    assert not g.accept("e", 12, 0)
    assert not g.accept("e", 13, 0)
    assert g.accept("e", 14, 0)


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=50))
def test_published_totals_never_decrease_without_confirmation(reads):
    g = TotalsGuard(confirm=3)
    published = []
    for r in reads:
        if g.accept("e", r, -3):
            published.append(r)
    for a, b in zip(published, published[1:]):
        # a decrease is only ever accepted as a confirmed replacement
        assert b >= a or g.replacements > 0


def test_iso_and_alignment():
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
    assert iso_utc(1795435200) == "2026-11-23T12:00:00Z"
    assert seconds_to_next(1795435200 + 59, 60, False) == 60
    assert seconds_to_next(1795435200 + 59, 3600, True) == 3541
    assert seconds_to_next(1795435200, 900, True) == 900
    assert clock_known(1795435200) and not clock_known(0)
