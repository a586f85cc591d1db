# firmware/rtcstate.py under real MicroPython 1.29 (WASM port). Run:
# MICROPYPATH=lib:firmware:host_tests/mpy:host_tests/fakes node tools/mpwasm.mjs \
#     host_tests/mpy/test_rtcstate.py

import struct
from binascii import crc32

from guard import TotalsGuard
from mptest import assert_raises, run
from rtcstate import SIZE, SLOTS, RtcState, id_hash

FIELDS = ("boots", "wakes", "elapsed_s", "wake_failures", "no_answers", "crashes", "buffered",
          "next_wake", "backoff_s", "discovery_published", "stay_awake", "repl", "bssid", "channel",
          "ip", "netmask", "gateway", "dns", "guard_held", "guard_replacements", "totals", "clock_synced_at", "reading",
          "budget")  # fmt: skip


def full_state():
    s = RtcState()
    s.boots = 7
    s.wakes = 123456
    s.elapsed_s = 259200
    s.wake_failures = 2
    s.no_answers = 1
    s.crashes = 3
    s.buffered = 42
    s.next_wake = 1767225600
    s.backoff_s = 900
    s.discovery_published = True
    s.stay_awake = True
    s.repl = True
    s.bssid = b"\xa4\x2b\xb0\x11\x22\x33"
    s.channel = 11
    s.ip = "192.168.1.50"
    s.netmask = "255.255.255.0"
    s.gateway = "192.168.1.1"
    s.dns = "1.1.1.1"
    s.guard_held = 5
    s.guard_replacements = 1
    s.totals = [(id_hash("heat_energy"), (123456, 0), (120000, 0, 2)),
                (id_hash("volume"), (5, -2), None)]  # fmt: skip
    s.clock_synced_at = 259000
    s.hold_reading({"heat_energy": "1234.567", "power": None}, 1767225000, 259100)
    s.budget = (71, 900, 6, [0] * 23 + [2], [5] + [0] * 22 + [3])
    return s


def same(a, b):
    for f in FIELDS:
        if getattr(a, f) != getattr(b, f):
            print("field differs:", f, getattr(a, f), getattr(b, f))
            return False
    return True


def test_round_trip_and_size():
    d = full_state().pack()
    assert len(d) == SIZE == 712 and SIZE <= 2048
    s = RtcState.unpack(d)
    assert s is not None and not s.fresh and same(s, full_state())
    assert same(RtcState.unpack(RtcState().pack()), RtcState())


def test_documented_offsets():
    d = full_state().pack()
    assert d[0:4] == b"KRTC" and d[4] == 4 and d[5] == SLOTS
    assert struct.unpack_from("<IIIHHHHII", d, 8) == (7, 123456, 259200, 2, 1, 3, 42,
                                                      1767225600, 900)  # fmt: skip
    assert d[36] == 7 and d[37] == 7 and d[38] == 11 and d[39] == 2
    assert d[40:46] == b"\xa4\x2b\xb0\x11\x22\x33"
    assert struct.unpack_from("<II", d, 64) == (5, 1)
    assert struct.unpack_from("<IqbqbBB", d, 72)[1:] == (123456, 0, 120000, 0, 2, 3)
    assert struct.unpack_from("<I", d, 292)[0] == 259000  # clock synced at
    assert struct.unpack_from("<BBHII", d, 296) == (3, 2, 0, 1767225000, 259100)
    assert struct.unpack_from("<III", d, 596) == (71, 900, 6)
    assert struct.unpack_from("<H", d, 654)[0] == 2 and struct.unpack_from("<H", d, 656)[0] == 5
    assert struct.unpack_from("<I", d, 708)[0] == crc32(d[:708])


def test_boundaries_round_trip():
    s = RtcState()
    s.boots = s.wakes = s.elapsed_s = s.next_wake = s.backoff_s = 0xFFFFFFFF
    s.guard_held = s.guard_replacements = 0xFFFFFFFF
    s.wake_failures = s.no_answers = s.crashes = s.buffered = 0xFFFF
    s.channel = 255
    s.ip = s.netmask = s.gateway = s.dns = "255.255.255.255"
    s.bssid = b"\xff" * 6
    s.totals = [(0xFFFFFFFF, ((1 << 63) - 1, 127), (-(1 << 63), -128, 255))]
    assert same(RtcState.unpack(s.pack()), s)


def test_counters_saturate():
    s = RtcState()
    s.wake_failures = 70000
    s.boots = 1 << 40
    t = RtcState.unpack(s.pack())
    assert t.wake_failures == 0xFFFF and t.boots == 0xFFFFFFFF


def test_out_of_range_refused_not_truncated():
    # MicroPython's struct.pack silently truncates (e.g. "<b" 200 -> 0xC8): pack() must refuse.
    for field, bad in (("next_wake", 1 << 32), ("channel", 256), ("backoff_s", -1)):
        s = RtcState()
        setattr(s, field, bad)
        assert_raises(ValueError, s.pack)
    for slot in ((0, (1 << 63, 0), None), (0, (1, 128), None), (0, None, (1, -129, 1))):
        s = RtcState()
        s.totals = [slot]
        assert_raises(ValueError, s.pack)
    s = RtcState()
    s.dns = "300.1.1.1"
    assert_raises(ValueError, s.pack)
    s = RtcState()
    s.boots = -1
    assert_raises(ValueError, s.pack)


def test_every_corrupt_byte_rejected():
    good = full_state().pack()
    for i in range(SIZE):
        bad = bytearray(good)
        bad[i] ^= 0x10
        assert RtcState.unpack(bytes(bad)) is None, i


def test_foreign_version_short_rejected():
    good = full_state().pack()
    for n in (0, 1, 8, 71, SIZE - 1):
        assert RtcState.unpack(good[:n]) is None
    for offset, value in ((4, 1), (0, 0x4A), (5, SLOTS + 1), (39, SLOTS + 1)):
        bad = bytearray(good)
        bad[offset] = value
        struct.pack_into("<I", bad, SIZE - 4, crc32(bytes(bad[: SIZE - 4])))
        assert RtcState.unpack(bytes(bad)) is None, offset
    assert RtcState.unpack(bytes(2048)) is None


def test_load_save_callables():
    mem = [b""]

    def getter():
        return mem[0]

    def setter(data):
        mem[0] = data

    s = RtcState.load(getter)
    assert s.fresh
    s.wakes = 9
    s.save(setter)
    t = RtcState.load(getter)
    assert not t.fresh and t.wakes == 9


def test_guard_decisions_survive_deep_sleep():
    state = [7]

    def rnd(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % n

    ids = ["heat_energy", "volume", "e3"]
    for _ in range(60):
        awake = TotalsGuard(1 + rnd(3))
        for _ in range(rnd(30)):
            awake.accept(ids[rnd(3)], rnd(500), rnd(3) - 2)
        s = RtcState()
        s.from_guard(awake)
        slept = TotalsGuard(awake.confirm)
        RtcState.unpack(s.pack()).to_guard(slept, ids)
        for _ in range(30):
            key, m, e = ids[rnd(3)], rnd(500), rnd(3) - 2
            assert slept.accept(key, m, e) == awake.accept(key, m, e)
        assert slept.last == awake.last and slept._lower == awake._lower
        assert slept.held == awake.held and slept.replacements == awake.replacements


def test_more_totals_than_slots():
    ids = ["t%02d" % i for i in range(SLOTS + 3)]
    g = TotalsGuard()
    for i in range(len(ids)):
        g.accept(ids[i], 100 + i, 0)
    s = RtcState()
    assert s.from_guard(g, ids) == 3
    h = TotalsGuard()
    assert RtcState.unpack(s.pack()).to_guard(h, ids) == SLOTS
    assert sorted(h.last) == ids[:SLOTS]


def test_a_total_too_big_for_a_slot_is_skipped_not_a_crash():
    # The codec takes up to 8 value bytes; a slot holds an i64. Packing must not fail (a
    # ValueError here would end every battery wake in a crash).
    g = TotalsGuard()
    g.accept("heat_energy", (1 << 64) - 1, 0)
    g.accept("volume", 5, -2)
    s = RtcState()
    assert s.from_guard(g, ["heat_energy", "volume"]) == 1
    h = TotalsGuard()
    assert RtcState.unpack(s.pack()).to_guard(h, ["heat_energy", "volume"]) == 1
    assert h.last == {"volume": (5, -2)}


def test_held_reading_round_trip():
    s = RtcState()
    assert s.hold_reading({"heat_energy": "1234.567", "volume": None, "old": "1"}, None, 42)
    back = RtcState.unpack(s.pack())
    assert back.held_reading(["heat_energy", "volume", "flow"]) == (
        {"heat_energy": "1234.567", "volume": None}, None, 42)  # fmt: skip
    big = {"s%02d" % i: "123456789.123456789" for i in range(16)}
    assert not s.hold_reading(big, None, 1)
    assert RtcState.unpack(s.pack()).reading is None


run(globals(), "rtcstate")
