"""firmware/buffer.py under CPython: order, acks, overflow, power loss, corruption, and a
hypothesis model check of random append/peek/ack/reopen/clear sequences."""

import os
import random
import shutil
import struct
import tempfile
import time
from binascii import crc32

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buffer import CAPACITY, SLOT_SIZE, Reading, ReadingBuffer

ESPHOME = ("heat_energy", "power", "temp1", "temp2", "temp_diff", "flow", "volume")
PER = 4096 // SLOT_SIZE


def reading(i, clock=True):
    values = {"heat_energy": "%d.%03d" % (1000 + i, i % 1000), "power": None, "temp1": "-0.005"}
    if clock:
        return Reading(values, time=1_767_225_600 + 900 * i, uptime=i)
    return Reading(values, time=None, uptime=60 * i)


def fill(path, n, **kw):
    buf = ReadingBuffer(path, **kw)
    for i in range(n):
        buf.append(reading(i))
    return buf


def segments(path):
    return sorted(n for n in os.listdir(path) if n.startswith("s"))


def everything(buf):
    return buf.peek(buf.capacity + 1)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "buf")


# -- basics ------------------------------------------------------------------------------------


def test_order_preserved_with_sequence_numbers(path):
    buf = fill(path, 50)
    got = buf.peek(50)
    assert [r.seq for r in got] == list(range(1, 51))
    assert got == [reading(i) for i in range(50)]
    assert buf.pending() == 50 and buf.head == 50 and buf.dropped == 0


def test_peek_does_not_consume_and_respects_n(path):
    buf = fill(path, 5)
    assert [r.seq for r in buf.peek(2)] == [1, 2]
    assert [r.seq for r in buf.peek(2)] == [1, 2]
    assert buf.peek(0) == []
    assert len(buf.peek(99)) == 5


def test_append_sets_seq_on_the_reading(path):
    buf = ReadingBuffer(path)
    r = reading(0)
    buf.append(r)
    assert r.seq == 1


def test_ack_persists_across_reopen(path):
    buf = fill(path, 20)
    buf.ack(7)
    assert buf.pending() == 13
    again = ReadingBuffer(path)
    assert again.pending() == 13
    assert [r.seq for r in again.peek(3)] == [8, 9, 10]
    assert again.peek(1)[0] == reading(7)


def test_unacked_readings_are_delivered_again_after_reboot(path):
    # at-least-once: peeked (published) but not acked = sent again
    buf = fill(path, 3)
    buf.peek(3)
    assert [r.seq for r in ReadingBuffer(path).peek(3)] == [1, 2, 3]


def test_ack_below_window_is_a_no_op_and_beyond_head_an_error(path):
    buf = fill(path, 5)
    buf.ack(3)
    buf.ack(2)
    assert buf.pending() == 2
    with pytest.raises(ValueError):
        buf.ack(6)


def test_ack_everything_deletes_segments_and_numbering_continues(path):
    buf = fill(path, 3 * PER)
    buf.ack(3 * PER)
    assert buf.pending() == 0
    assert segments(path) == []  # all full segments delivered: nothing left on flash
    again = ReadingBuffer(path)
    assert again.head == 3 * PER and again.pending() == 0
    again.append(reading(99))
    assert again.peek(1)[0].seq == 3 * PER + 1


def test_opening_an_empty_buffer_writes_nothing(path):
    ReadingBuffer(path)
    assert os.listdir(path) == []
    ReadingBuffer(path)
    assert os.listdir(path) == []


# -- overflow ----------------------------------------------------------------------------------


def test_overflow_drops_exactly_the_oldest_and_counts(path):
    buf = fill(path, 25, capacity=10)
    assert buf.pending() == 10
    assert buf.dropped == 15
    assert [r.seq for r in everything(buf)] == list(range(16, 26))
    again = ReadingBuffer(path, capacity=10)
    assert again.dropped == 15 and again.pending() == 10
    assert [r.seq for r in everything(again)] == list(range(16, 26))


def test_overflow_after_partial_ack(path):
    buf = fill(path, 6, capacity=6)
    buf.ack(2)  # 3..6 pending
    for i in range(6, 9):
        buf.append(reading(i))  # 3..9 would be 7 > 6: seq 3 dropped
    assert [r.seq for r in everything(buf)] == [4, 5, 6, 7, 8, 9]
    assert buf.dropped == 1
    buf.ack(5)
    again = ReadingBuffer(path, capacity=6)
    assert again.dropped == 1
    assert [r.seq for r in everything(again)] == [6, 7, 8, 9]


def test_flash_use_is_bounded(path):
    cap = 40
    buf = ReadingBuffer(path, capacity=cap)
    limit = (cap + PER - 1) // PER + 1
    for i in range(500):
        buf.append(reading(i))
        names = segments(path)
        assert len(names) <= limit
        assert all(os.path.getsize(os.path.join(path, n)) <= PER * SLOT_SIZE for n in names)
    assert buf.dropped == 500 - cap


def test_default_capacity_is_a_week_at_15_minutes():
    assert CAPACITY >= 7 * 24 * 4
    assert SLOT_SIZE * PER == 4096


# -- clear -------------------------------------------------------------------------------------


def test_clear_empties_resets_dropped_and_keeps_numbering(path):
    buf = fill(path, 30, capacity=10)
    buf.clear()
    assert buf.pending() == 0 and buf.dropped == 0 and buf.peek(5) == []
    assert segments(path) == []
    again = ReadingBuffer(path, capacity=10)
    assert again.pending() == 0 and again.dropped == 0 and again.head == 30
    again.append(reading(1))
    assert [r.seq for r in again.peek(2)] == [31]
    assert [r.seq for r in ReadingBuffer(path, capacity=10).peek(2)] == [31]


# -- content -----------------------------------------------------------------------------------


def test_exact_decimal_text_preserved(path):
    values = {
        "heat_energy": "200.00",
        "temp_diff": "-0.005",
        "volume": "123456789",
        "flow": "0",
        "power": "0.000",
        "e3": "-1234567890",
        "temp1": None,
    }
    buf = ReadingBuffer(path)
    buf.append(Reading(values, time=1_767_225_600))
    got = ReadingBuffer(path).peek(1)[0].values
    assert got == values
    assert all(type(v) is str for v in got.values() if v is not None)


def test_clock_unknown_readings_keep_order_and_are_marked(path):
    buf = ReadingBuffer(path)
    buf.append(reading(0, clock=False))
    buf.append(reading(1, clock=True))
    buf.append(reading(2, clock=False))
    got = ReadingBuffer(path).peek(3)
    assert [r.seq for r in got] == [1, 2, 3]
    assert [r.time is None for r in got] == [True, False, True]
    assert got[0].uptime == 0 and got[2].uptime == 120
    assert got[1].time == 1_767_225_600 + 900


def test_time_float_is_truncated_and_range_checked(path):
    buf = ReadingBuffer(path)
    buf.append(Reading({"a": "1"}, time=1_767_225_600.75))
    assert buf.peek(1)[0].time == 1_767_225_600
    with pytest.raises(ValueError):
        buf.append(Reading({"a": "1"}, time=-1))
    with pytest.raises(ValueError):
        buf.append(Reading({"a": "1"}, time=1 << 32))
    with pytest.raises(ValueError):
        buf.append(Reading({"a": "1"}, uptime=-5))


def test_values_must_be_text(path):
    buf = ReadingBuffer(path)
    with pytest.raises(TypeError):
        buf.append(Reading({"a": 1.5}))
    with pytest.raises(TypeError):
        buf.append(Reading({"a": 15}))
    with pytest.raises(TypeError):
        buf.append(Reading({1: "1"}))
    assert buf.pending() == 0 and buf.head == 0


def test_slot_fits_esphome_sensors_plus_four_custom_registers(path):
    buf = ReadingBuffer(path)
    values = {k: "1234567.890" for k in ESPHOME}  # 10 digits + point
    for i in range(4):
        values["custom_%03d" % i] = "-123456.789"  # 10-character ids
    buf.append(Reading(values, time=1_767_225_600))
    assert buf.peek(1)[0].values == values
    values["custom_004"] = "1"
    with pytest.raises(ValueError) as e:
        buf.append(Reading(values, time=1_767_225_600))
    assert "needs 263 bytes (12 values), more than slot_size 256" in str(e.value)
    assert buf.pending() == 1 and buf.head == 1


def test_oversized_record_writes_nothing(path):
    buf = fill(path, 3)
    before = {n: open(os.path.join(path, n), "rb").read() for n in os.listdir(path)}
    with pytest.raises(ValueError) as e:
        buf.append(Reading({"x" * 200: "1" * 100}))
    assert "needs %d bytes" % (18 + 2 + 200 + 100 + 4) in str(e.value)
    after = {n: open(os.path.join(path, n), "rb").read() for n in os.listdir(path)}
    assert before == after
    buf.append(reading(3))
    assert [r.seq for r in ReadingBuffer(path).peek(9)] == [1, 2, 3, 4]


def test_larger_slots_hold_more(path):
    buf = ReadingBuffer(path, slot_size=512)
    values = {"register_%02d" % i: "1234567890" for i in range(20)}
    buf.append(Reading(values))
    assert ReadingBuffer(path, slot_size=512).peek(1)[0].values == values


# -- power loss and corruption ------------------------------------------------------------------


def _truncate(name, size):
    with open(name, "r+b") as f:
        f.truncate(size)


@pytest.mark.parametrize("n", [5, PER + 1, 2 * PER])  # mid segment, first and last slot
def test_power_loss_at_every_byte_of_the_last_slot(tmp_path, n):
    src = str(tmp_path / "src")
    fill(src, n)
    last = segments(src)[-1]
    slot_at = ((n - 1) % PER) * SLOT_SIZE
    intact_from = slot_at + SLOT_SIZE  # a slot counts only when all of it is on flash
    for cut in range(slot_at, slot_at + SLOT_SIZE + 1):
        work = str(tmp_path / ("cut%d" % cut))
        shutil.copytree(src, work)
        _truncate(os.path.join(work, last), cut)
        buf = ReadingBuffer(work)
        survived = n if cut >= intact_from else n - 1
        got = everything(buf)
        assert [r.seq for r in got] == list(range(1, survived + 1)), cut
        assert got == [reading(i) for i in range(survived)]
        assert buf.pending() == survived
        # The node carries on: the next reading takes the next free seq and is readable.
        buf.append(reading(100))
        got = everything(ReadingBuffer(work))
        assert [r.seq for r in got] == list(range(1, survived + 2)), cut
        assert got[-1] == reading(100) and got[:-1] == [reading(i) for i in range(survived)]
        shutil.rmtree(work)


def test_torn_overwrite_of_the_newest_slot(path):
    # The newest slot rewritten in place (r+b after an earlier torn append) tore again: part
    # new bytes, part old. It is not returned, and its seq is simply written again.
    buf = fill(path, 3)
    name = os.path.join(path, segments(path)[0])
    with open(name, "r+b") as f:
        f.seek(2 * SLOT_SIZE + 10)
        f.write(b"\x00" * 7)
    buf = ReadingBuffer(path)
    assert [r.seq for r in everything(buf)] == [1, 2]
    assert buf.head == 2
    buf.append(reading(7))
    assert everything(ReadingBuffer(path)) == [reading(0), reading(1), reading(7)]


def test_corrupt_middle_slot_is_counted_at_open(path):
    fill(path, 3)
    with open(os.path.join(path, segments(path)[0]), "r+b") as f:
        f.seek(SLOT_SIZE + 30)
        f.write(b"\x55")
    buf = ReadingBuffer(path)
    assert buf.corrupt == 1 and buf.pending() == 2
    assert [r.seq for r in everything(buf)] == [1, 3]


@pytest.mark.parametrize("seed", range(40))
def test_random_corruption_never_returns_garbage(tmp_path, seed):
    rnd = random.Random(seed)
    path = str(tmp_path / "buf")
    n = rnd.randint(1, 60)
    fill(path, n)
    touched = set()
    for _ in range(rnd.randint(1, 6)):
        seq = rnd.randint(1, n)
        name = os.path.join(path, "s%08x" % ((seq - 1) // PER))
        at = ((seq - 1) % PER) * SLOT_SIZE + rnd.randrange(SLOT_SIZE)
        with open(name, "r+b") as f:
            f.seek(at)
            old = f.read(1)
            f.seek(at)
            f.write(bytes([old[0] ^ rnd.randint(1, 255)]))
        touched.add(seq)  # the CRC covers the whole slot, padding included
    buf = ReadingBuffer(path)
    got = everything(buf)
    for r in got:
        assert r == reading(r.seq - 1)  # never garbage
    assert [r.seq for r in got] == [s for s in range(1, n + 1) if s not in touched]
    assert buf.pending() == len(got)


def test_corruption_after_open_is_skipped_by_peek(path):
    buf = fill(path, 4)
    name = os.path.join(path, segments(path)[0])
    with open(name, "r+b") as f:
        f.seek(SLOT_SIZE + 20)
        f.write(b"\xee")
    assert [r.seq for r in buf.peek(4)] == [1, 3, 4]
    assert buf.pending() == 3 and buf.corrupt == 1


def test_missing_segment_file_loses_only_its_records(path):
    buf = fill(path, 3 * PER)
    os.remove(os.path.join(path, segments(path)[1]))
    assert [r.seq for r in buf.peek(3 * PER)] == list(range(1, PER + 1)) + list(
        range(2 * PER + 1, 3 * PER + 1)
    )
    again = ReadingBuffer(path)
    assert again.pending() == 2 * PER


def _state_files(path):
    return sorted(n for n in os.listdir(path) if n.startswith("ack"))


def test_torn_ack_write_falls_back_to_the_previous_pointer(path):
    buf = fill(path, 10)
    buf.ack(3)
    buf.ack(6)
    gens = {n: struct.unpack_from("<4sHHIII", open(os.path.join(path, n), "rb").read())[3]
            for n in _state_files(path)}  # fmt: skip
    newest = max(gens, key=gens.get)
    _truncate(os.path.join(path, newest), 10)
    again = ReadingBuffer(path)
    assert [r.seq for r in again.peek(1)] == [4]  # resends 4..6, loses nothing


def test_lost_state_resends_everything_but_returns_no_garbage(path):
    buf = fill(path, 10)
    buf.ack(8)
    for n in _state_files(path):
        with open(os.path.join(path, n), "wb") as f:
            f.write(b"\xff" * 24)
    got = everything(ReadingBuffer(path))
    assert [r.seq for r in got] == list(range(1, 11))
    assert got == [reading(i) for i in range(10)]


def test_layout_change_counts_the_undelivered_as_dropped(path):
    buf = fill(path, 12)
    buf.ack(4)
    bigger = ReadingBuffer(path, slot_size=512)
    assert bigger.pending() == 0 and bigger.dropped == 8 and bigger.head == 12
    bigger.append(reading(0))
    assert [r.seq for r in ReadingBuffer(path, slot_size=512).peek(3)] == [13]


def test_stale_slots_from_an_old_life_are_never_returned(path):
    # Segment 0 holds seqs 1..16; copy its bytes into segment 1's file: right checksums,
    # wrong positions (seq does not match the slot), so nothing in it is valid.
    fill(path, 5)
    data = open(os.path.join(path, "s00000000"), "rb").read()
    with open(os.path.join(path, "s00000001"), "wb") as f:
        f.write(data)
    buf = ReadingBuffer(path)
    assert buf.head == 5
    assert [r.seq for r in everything(buf)] == [1, 2, 3, 4, 5]


def test_slot_format_header(path):
    fill(path, 1)
    data = open(os.path.join(path, "s00000000"), "rb").read()
    assert len(data) == SLOT_SIZE
    magic, version, flags, count, seq, t, up, length = struct.unpack_from("<BBBBIIIH", data)
    assert (magic, version, flags, count, seq, t, up) == (0xB7, 1, 1, 3, 1, 1_767_225_600, 0)
    assert data[18 + length : SLOT_SIZE - 4] == bytes(SLOT_SIZE - 22 - length)
    assert struct.unpack_from("<I", data, SLOT_SIZE - 4)[0] == crc32(data[: SLOT_SIZE - 4])


def _failing_writes(monkeypatch):
    # The module ReadingBuffer really uses (the node may drop "buffer" from sys.modules and a
    # later import loads a new copy).
    module_globals = ReadingBuffer.__init__.__globals__
    real = open

    def fake(name, mode="r", *a, **kw):
        if "r" not in mode or "+" in mode:
            raise OSError(28, "ENOSPC")
        return real(name, mode, *a, **kw)

    monkeypatch.setitem(module_globals, "open", fake)


def test_failed_append_changes_nothing(path, monkeypatch):
    buf = fill(path, 3)
    _failing_writes(monkeypatch)
    with pytest.raises(OSError):
        buf.append(reading(3))
    assert buf.head == 3 and buf.pending() == 3
    monkeypatch.undo()
    buf.append(reading(3))
    assert [r.seq for r in ReadingBuffer(path).peek(9)] == [1, 2, 3, 4]


def test_failed_ack_write_changes_nothing(path, monkeypatch):
    buf = fill(path, 5)
    _failing_writes(monkeypatch)
    with pytest.raises(OSError):
        buf.ack(3)
    assert buf.pending() == 5 and [r.seq for r in buf.peek(1)] == [1]
    monkeypatch.undo()
    buf.ack(3)
    assert buf.pending() == 2


# -- cost --------------------------------------------------------------------------------------


def test_open_scan_of_a_full_buffer_is_fast(path):
    values = {k: "1234567.890" for k in ESPHOME}
    buf = ReadingBuffer(path)
    for i in range(CAPACITY):
        buf.append(Reading(values, time=1_767_225_600 + 900 * i))
    best = None
    for _ in range(5):
        t0 = time.perf_counter()
        again = ReadingBuffer(path)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    assert again.pending() == CAPACITY
    print("open + scan of %d slots: %.2f ms" % (CAPACITY, best * 1000))
    assert best < 1.0


# -- model check ---------------------------------------------------------------------------------


class Model:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []  # (seq, Reading)
        self.head = 0
        self.dropped = 0

    def append(self, r):
        self.head += 1
        self.items.append((self.head, r))
        if len(self.items) > self.capacity:
            self.items.pop(0)
            self.dropped += 1

    def ack(self, seq):
        self.items = [(s, r) for s, r in self.items if s > seq]

    def clear(self):
        self.items = []
        self.dropped = 0


_text = st.one_of(st.none(), st.from_regex(r"-?[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True))
_op = st.one_of(
    st.tuples(st.just("append"), st.dictionaries(st.sampled_from(ESPHOME), _text, max_size=3),
              st.one_of(st.none(), st.integers(0, 2**32 - 1)), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("peek"), st.integers(0, 12)),
    st.tuples(st.just("ack"), st.integers(0, 12)),
    st.tuples(st.just("reopen")),
    st.tuples(st.just("clear")),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    capacity=st.integers(1, 12),
    per=st.integers(1, 5),
    ops=st.lists(_op, max_size=60),
)
def test_matches_an_in_memory_model(capacity, per, ops):
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "buf")
        kw = {"capacity": capacity, "slot_size": 128, "per_segment": per}
        buf = ReadingBuffer(path, **kw)
        model = Model(capacity)
        limit = (capacity + per - 1) // per + 1
        for op in ops:
            if op[0] == "append":
                r = Reading(op[1], time=op[2], uptime=op[3])
                buf.append(r)
                model.append(r)
            elif op[0] == "peek":
                got = buf.peek(op[1])
                want = model.items[: op[1]]
                assert [(r.seq, r) for r in got] == want
            elif op[0] == "ack":
                if model.items:
                    seq = model.items[min(op[1], len(model.items) - 1)][0]
                else:
                    seq = model.head - op[1] % (model.head + 1)
                buf.ack(seq)
                model.ack(seq)
            elif op[0] == "reopen":
                buf = ReadingBuffer(path, **kw)
            else:
                buf.clear()
                model.clear()
            assert buf.pending() == len(model.items)
            assert buf.dropped == model.dropped
            assert buf.head == model.head
            assert len(segments(path)) <= limit
        assert [(r.seq, r) for r in everything(ReadingBuffer(path, **kw))] == model.items
    finally:
        shutil.rmtree(tmp)
