"""firmware/rtcstate.py under CPython: layout, boundaries, rejection of anything not ours, and
the TotalsGuard state surviving a pack/unpack (deep sleep) with the same accept decisions."""

import struct
from binascii import crc32

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rtcstate
from guard import TotalsGuard
from rtcstate import SIZE, SLOTS, RtcState, id_hash

BSSID = b"\xa4\x2b\xb0\x11\x22\x33"


def full_state():
    s = RtcState()
    s.boots = 7
    s.wakes = 123456
    s.elapsed_s = 86400 * 3
    s.wake_failures = 2
    s.no_answers = 1
    s.crashes = 3
    s.buffered = 42
    s.next_wake = 1_767_225_600
    s.backoff_s = 900
    s.discovery_published = True
    s.stay_awake = True
    s.repl = True
    s.bssid = BSSID
    s.channel = 11
    s.ip = "192.168.1.50"
    s.netmask = "255.255.255.0"
    s.gateway = "192.168.1.1"
    s.dns = "1.1.1.1"
    s.guard_held = 5
    s.guard_replacements = 1
    s.totals = [
        (id_hash("heat_energy"), (123456, 0), (120000, 0, 2)),
        (id_hash("volume"), (5, -2), None),
    ]
    s.serial = 67051653
    s.meter_type = 0x0403
    s.sw_revision = "K6"
    s.units_hash = 0xDEADBEEF
    s.interval_s = 900
    s.skip_reads = 4
    s.net_retry_at = 7200
    s.clock_synced_at = 259000
    s.hold_reading({"heat_energy": "1234.567", "power": None, "temp1": "62.40"},
                   1_767_225_000, 259100)  # fmt: skip
    charged = [0] * 24
    spent = [0] * 24
    charged[23], spent[23], spent[0] = 2, 3, 60000
    s.budget = (71, 900, 6, charged, spent)
    s.identity_at = 86000
    return s


FIELDS = ("boots wakes elapsed_s wake_failures no_answers crashes buffered next_wake backoff_s "
          "discovery_published stay_awake repl bssid channel ip netmask gateway dns guard_held "
          "guard_replacements totals serial meter_type sw_revision units_hash interval_s "
          "skip_reads net_retry_at clock_synced_at reading budget identity_at").split()  # fmt: skip


def same(a, b):
    return all(getattr(a, f) == getattr(b, f) for f in FIELDS)


def with_crc(data):
    data = bytearray(data)
    struct.pack_into("<I", data, SIZE - 4, crc32(bytes(data[: SIZE - 4])))
    return bytes(data)


# -- layout ------------------------------------------------------------------------------------


def test_size_well_under_rtc_memory():
    assert SIZE == len(RtcState().pack()) == 712
    assert SIZE <= 2048 // 2  # the ESP32 keeps 2048 bytes of RTC memory for us
    assert struct.calcsize(rtcstate._HEAD_FMT) == rtcstate._HEAD == 72
    assert struct.calcsize(rtcstate._SLOT_FMT) == rtcstate._SLOT == 24
    assert struct.calcsize(rtcstate._READING_FMT) == rtcstate._READING_HEAD == 12
    assert struct.calcsize(rtcstate._BUDGET_FMT) == 112
    assert rtcstate._HEAD + SLOTS * rtcstate._SLOT + 32 + 300 + 112 + 4 == SIZE


def test_fields_sit_at_the_documented_offsets():
    d = full_state().pack()
    assert d[0:4] == b"KRTC" and d[4] == 4 and d[5] == SLOTS
    assert struct.unpack_from("<H", d, 6)[0] == SIZE
    assert struct.unpack_from("<IIIHHHHII", d, 8) == (7, 123456, 259200, 2, 1, 3, 42,
                                                      1_767_225_600, 900)  # fmt: skip
    assert d[36] == 7  # discovery | stay awake | repl
    assert d[37] == 7  # bssid | static ip | dns
    assert d[38] == 11 and d[39] == 2
    assert d[40:46] == BSSID
    assert d[46:50] == bytes([192, 168, 1, 50])
    assert d[50:54] == bytes([255, 255, 255, 0])
    assert d[54:58] == bytes([192, 168, 1, 1])
    assert d[58:62] == bytes([1, 1, 1, 1])
    assert struct.unpack_from("<II", d, 64) == (5, 1)
    assert struct.unpack_from("<IqbqbBB", d, 72) == (id_hash("heat_energy"), 123456, 0, 120000,
                                                     0, 2, 3)  # fmt: skip
    assert struct.unpack_from("<IqbqbBB", d, 96) == (id_hash("volume"), 5, -2, 0, 0, 0, 1)
    assert d[120:264] == bytes(144)  # unused slots are zero
    assert struct.unpack_from("<IH6sIIHIHI", d, 264) == (67051653, 0x0403, b"K6\0\0\0\0",
                                                         0xDEADBEEF, 900, 4, 7200, 0,
                                                         259000)  # fmt: skip
    assert struct.unpack_from("<BBHII", d, 296) == (3, 3, 0, 1_767_225_000, 259100)
    assert struct.unpack_from("<IB", d, 308) == (id_hash("heat_energy"), 8)
    assert d[313:321] == b"1234.567"
    assert struct.unpack_from("<IB", d, 321) == (id_hash("power"), 255)  # null
    assert struct.unpack_from("<IB", d, 326) == (id_hash("temp1"), 5)
    assert d[331:336] == b"62.40"
    assert d[336:596] == bytes(260)
    assert struct.unpack_from("<III", d, 596) == (71, 900, 6)
    assert struct.unpack_from("<H", d, 608 + 2 * 23)[0] == 2  # charged, hour slot 23
    assert struct.unpack_from("<H", d, 656)[0] == 60000  # spent, hour slot 0
    assert struct.unpack_from("<H", d, 656 + 2 * 23)[0] == 3
    assert struct.unpack_from("<I", d, 704)[0] == 86000  # serial last read
    assert struct.unpack_from("<I", d, 708)[0] == crc32(d[:708])


# -- round trips -------------------------------------------------------------------------------


def test_defaults_round_trip():
    s = RtcState.unpack(RtcState().pack())
    assert s is not None and not s.fresh
    assert same(s, RtcState())


def test_full_round_trip():
    s = RtcState.unpack(full_state().pack())
    assert s is not None and same(s, full_state())


def test_load_and_save_through_callables():
    mem = {"data": b""}

    def getter():
        return mem["data"]

    def setter(data):
        mem["data"] = data

    s = RtcState.load(getter)
    assert s.fresh and s.boots == 0
    s.boots = 1
    s.save(setter)
    again = RtcState.load(getter)
    assert not again.fresh and again.boots == 1
    mem["data"] = b"\x00" * 2048  # someone else's bytes
    assert RtcState.load(getter).fresh


def test_longer_memory_contents_are_accepted():
    # rtc.memory() returns whatever was written last; trailing bytes beyond SIZE are not ours.
    s = RtcState.unpack(full_state().pack() + b"\xff" * 100)
    assert s is not None and same(s, full_state())


# -- boundaries --------------------------------------------------------------------------------


def test_maximum_values_round_trip():
    s = RtcState()
    for f in ("boots", "wakes", "elapsed_s", "next_wake", "backoff_s", "guard_held",
              "guard_replacements"):  # fmt: skip
        setattr(s, f, 2**32 - 1)
    for f in ("wake_failures", "no_answers", "crashes", "buffered"):
        setattr(s, f, 2**16 - 1)
    s.channel = 255
    s.bssid = b"\xff" * 6
    s.ip = s.netmask = s.gateway = s.dns = "255.255.255.255"
    s.totals = [(2**32 - 1, (2**63 - 1, 127), (-(2**63), -128, 255))] + [
        (i, (-(2**63), -128), None) for i in range(SLOTS - 1)
    ]
    t = RtcState.unpack(s.pack())
    assert t is not None and same(s, t)


def test_minimum_values_round_trip():
    s = RtcState()
    s.bssid = bytes(6)
    s.ip = s.netmask = s.gateway = s.dns = "0.0.0.0"
    s.totals = [(0, (0, 0), (0, 0, 0))]
    t = RtcState.unpack(s.pack())
    assert t is not None and same(s, t)


@pytest.mark.parametrize(
    "field,bits",
    [("boots", 32), ("wakes", 32), ("elapsed_s", 32), ("guard_held", 32),
     ("guard_replacements", 32), ("wake_failures", 16), ("no_answers", 16), ("crashes", 16),
     ("buffered", 16)],
)  # fmt: skip
def test_counters_saturate_instead_of_wrapping(field, bits):
    s = RtcState()
    setattr(s, field, 1 << bits)
    assert getattr(RtcState.unpack(s.pack()), field) == (1 << bits) - 1
    setattr(s, field, -1)
    with pytest.raises(ValueError):
        s.pack()


@pytest.mark.parametrize(
    "field,bad",
    [("next_wake", 2**32), ("next_wake", -1), ("backoff_s", 2**32), ("channel", 256),
     ("channel", -1)],
)  # fmt: skip
def test_out_of_range_fields_are_refused(field, bad):
    s = RtcState()
    setattr(s, field, bad)
    with pytest.raises(ValueError):
        s.pack()


@pytest.mark.parametrize(
    "slot",
    [(0, (2**63, 0), None), (0, (-(2**63) - 1, 0), None), (0, (1, 128), None),
     (0, (1, -129), None), (0, None, (2**63, 0, 1)), (0, None, (1, 200, 1)), (2**32, None, None)],
)  # fmt: skip
def test_out_of_range_totals_are_refused(slot):
    # MicroPython's struct would silently truncate these: pack() must refuse them itself.
    s = RtcState()
    s.totals = [slot]
    with pytest.raises(ValueError):
        s.pack()


def test_too_many_totals_refused():
    s = RtcState()
    s.totals = [(i, (1, 0), None) for i in range(SLOTS + 1)]
    with pytest.raises(ValueError):
        s.pack()


@pytest.mark.parametrize("bad", ["192.168.1", "192.168.1.256", "a.b.c.d", "1.2.3.4.5", "-1.0.0.0"])
def test_bad_addresses_refused(bad):
    s = RtcState()
    s.dns = bad
    with pytest.raises(ValueError):
        s.pack()


def test_bad_bssid_refused():
    s = RtcState()
    s.bssid = b"\x01\x02"
    with pytest.raises(ValueError):
        s.pack()


def test_partial_static_ip_is_not_kept():
    s = RtcState()
    s.ip = "10.0.0.2"  # no netmask/gateway: not a usable static config
    s.dns = "10.0.0.1"
    t = RtcState.unpack(s.pack())
    assert t.ip is None and t.netmask is None and t.gateway is None and t.dns == "10.0.0.1"


def test_forget_network():
    s = full_state()
    s.forget_network()
    t = RtcState.unpack(s.pack())
    assert t.bssid is None and t.channel == 0 and t.ip is None and t.dns is None
    assert t.boots == 7


# -- rejection ---------------------------------------------------------------------------------


def test_any_corrupt_byte_is_rejected():
    good = full_state().pack()
    for i in range(SIZE):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(good)
            bad[i] ^= flip
            assert RtcState.unpack(bytes(bad)) is None, (i, flip)


def test_short_data_is_rejected():
    good = full_state().pack()
    for n in range(SIZE):
        assert RtcState.unpack(good[:n]) is None
    assert RtcState.unpack(None) is None


def test_node_block_round_trip():
    s = full_state()
    t = RtcState.unpack(s.pack())
    assert (t.serial, t.meter_type, t.sw_revision, t.units_hash, t.interval_s, t.skip_reads,
            t.net_retry_at) == (67051653, 0x0403, "K6", 0xDEADBEEF, 900, 4, 7200)  # fmt: skip
    s.sw_revision = "TOOLONG"
    with pytest.raises(ValueError):
        s.pack()


def test_wrong_version_rejected_even_with_a_valid_crc():
    bad = bytearray(full_state().pack())
    bad[4] = 1  # the previous layout
    assert RtcState.unpack(with_crc(bad)) is None


def test_foreign_magic_rejected_even_with_a_valid_crc():
    bad = bytearray(full_state().pack())
    bad[0:4] = b"ESPH"
    assert RtcState.unpack(with_crc(bad)) is None


@pytest.mark.parametrize("offset,value", [(5, SLOTS + 1), (6, 0), (39, SLOTS + 1)])
def test_layout_fields_must_match(offset, value):
    bad = bytearray(full_state().pack())
    if offset == 6:
        struct.pack_into("<H", bad, 6, SIZE + 4)
    else:
        bad[offset] = value
    assert RtcState.unpack(with_crc(bad)) is None


# -- TotalsGuard -------------------------------------------------------------------------------


def test_guard_state_round_trip():
    g = TotalsGuard()
    g.accept("heat_energy", 1000, 0)
    g.accept("heat_energy", 990, 0)  # held, pending lower 1
    g.accept("volume", 5, -2)
    s = RtcState()
    assert s.from_guard(g) == 0
    h = TotalsGuard()
    assert RtcState.unpack(s.pack()).to_guard(h, ["heat_energy", "volume"]) == 2
    assert h.last == g.last and h._lower == g._lower
    assert h.held == g.held == 1 and h.replacements == 0


def test_more_totals_than_slots_keeps_the_first_in_priority_order():
    ids = ["t%02d" % i for i in range(SLOTS + 2)]
    g = TotalsGuard()
    for i, key in enumerate(ids):
        g.accept(key, 100 + i, 0)
    s = RtcState()
    assert s.from_guard(g, ids[::-1]) == 2  # priority: last ids first
    h = TotalsGuard()
    assert RtcState.unpack(s.pack()).to_guard(h, ids) == SLOTS
    assert sorted(h.last) == sorted(ids[2:])
    # Without a slot the guard starts over for t00: any value is accepted as the first one.
    assert h.accept("t00", 1, 0)


def test_default_priority_is_sorted_ids():
    g = TotalsGuard()
    for key in ["z%d" % i for i in range(SLOTS)] + ["a", "b"]:
        g.accept(key, 1, 0)
    s = RtcState()
    assert s.from_guard(g) == 2
    h = TotalsGuard()
    s.to_guard(h, list(g.last))
    assert "a" in h.last and "b" in h.last and "z7" not in h.last and "z6" not in h.last


def test_ids_no_longer_configured_are_ignored():
    g = TotalsGuard()
    g.accept("old_name", 500, 0)
    s = RtcState()
    s.from_guard(g)
    h = TotalsGuard()
    assert RtcState.unpack(s.pack()).to_guard(h, ["new_name"]) == 0
    assert h.last == {}


def test_hash_collision_keeps_only_the_first():
    assert id_hash("plumless") == id_hash("buckeroo")  # a known CRC-32 collision
    g = TotalsGuard()
    g.accept("plumless", 10, 0)
    g.accept("buckeroo", 20, 0)
    s = RtcState()
    assert s.from_guard(g, ["plumless", "buckeroo"]) == 1
    h = TotalsGuard()
    s.to_guard(h, ["plumless"])
    assert h.last == {"plumless": (10, 0)}


_value = st.tuples(st.integers(0, 2000), st.integers(-3, 1))
_reads = st.lists(st.tuples(st.sampled_from(["heat_energy", "volume", "e3"]), _value),
                  max_size=40)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(before=_reads, after=_reads, confirm=st.integers(1, 4))
def test_guard_decisions_survive_deep_sleep(before, after, confirm):
    awake = TotalsGuard(confirm)
    for key, (m, e) in before:
        awake.accept(key, m, e)
    s = RtcState()
    s.from_guard(awake)
    slept = TotalsGuard(confirm)
    RtcState.unpack(s.pack()).to_guard(slept, ["heat_energy", "volume", "e3"])
    for key, (m, e) in after:
        assert slept.accept(key, m, e) == awake.accept(key, m, e)
    assert slept.last == awake.last and slept._lower == awake._lower
    assert (slept.held, slept.replacements) == (awake.held, awake.replacements)


def test_a_total_too_big_for_a_slot_is_skipped_not_a_crash():
    g = TotalsGuard()
    g.accept("heat_energy", (1 << 64) - 1, 0)  # 8 value bytes: the codec allows it
    g.accept("volume", -(1 << 63) - 1, 0)  # below i64 as well
    s = RtcState()
    assert s.from_guard(g, ["heat_energy", "volume"]) == 2
    assert RtcState.unpack(s.pack()).totals == []


# -- the reading being published -----------------------------------------------------------------


def test_a_held_reading_survives_a_reset_and_maps_back_to_the_configured_ids():
    s = RtcState()
    assert s.hold_reading({"heat_energy": "1234.567", "volume": None, "old": "1"}, None, 42)
    back = RtcState.unpack(s.pack())
    assert back.held_reading(["heat_energy", "volume", "flow"]) == (
        {"heat_energy": "1234.567", "volume": None},
        None,
        42,
    )  # "old" is no longer configured
    back.reading = None
    assert RtcState.unpack(back.pack()).held_reading(["heat_energy"]) is None


def test_a_reading_too_big_for_the_block_is_not_kept_and_packing_does_not_fail():
    s = RtcState()
    big = {"s%02d" % i: "123456789.123456789" for i in range(16)}
    assert not s.hold_reading(big, 1_767_225_000, 1)
    assert RtcState.unpack(s.pack()).reading is None
    assert not s.hold_reading({"x": "1" * 255}, None, 1)  # a text longer than a length byte
    assert RtcState.unpack(s.pack()).reading is None


def test_non_ascii_and_empty_texts_round_trip():
    s = RtcState()
    assert s.hold_reading({"w\u00e4rme": "-0.005", "e": ""}, None, 0)
    assert RtcState.unpack(s.pack()).held_reading(["w\u00e4rme", "e"])[0] == {
        "w\u00e4rme": "-0.005",
        "e": "",
    }


def test_budget_counts_saturate_and_a_cold_start_has_none():
    assert RtcState().budget is None and RtcState.unpack(RtcState().pack()).budget is None
    s = RtcState()
    s.budget = (1, 900, 0, [70000] + [0] * 23, [0] * 24)
    assert RtcState.unpack(s.pack()).budget[3][0] == 65535  # never wraps to a small count
    s.budget = (1, 900, 0, [0] * 23, [0] * 24)
    with pytest.raises(ValueError, match="24 hourly counts"):
        s.pack()
