# firmware/buffer.py under real MicroPython 1.29 (WASM port, MEMFS files under /tmp).
# Run: MICROPYPATH=lib:firmware:host_tests/mpy:host_tests/fakes node tools/mpwasm.mjs \
#          host_tests/mpy/test_buffer.py

import gc
import os
import time

from buffer import CAPACITY, SLOT_SIZE, Reading, ReadingBuffer
from mptest import assert_raises, run

PER = 4096 // SLOT_SIZE
ROOT = "/tmp/mpy_buffer"
ESPHOME = ("heat_energy", "power", "temp1", "temp2", "temp_diff", "flow", "volume")
_dirs = [0]


def _rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        os.remove(path + "/" + n)
    os.rmdir(path)


def fresh():
    # A new, empty buffer directory for each use.
    try:
        os.stat(ROOT)
    except OSError:
        os.mkdir(ROOT)
    _dirs[0] += 1
    path = "%s/b%d" % (ROOT, _dirs[0])
    _rmtree(path)
    return path


def reading(i, clock=True):
    values = {"heat_energy": "%d.%03d" % (1000 + i, i % 1000), "power": None, "temp1": "-0.005"}
    if clock:
        return Reading(values, time=1767225600 + 900 * i, uptime=i)
    return Reading(values, time=None, uptime=60 * i)


def fill(path, n, capacity=CAPACITY):
    buf = ReadingBuffer(path, capacity=capacity)
    for i in range(n):
        buf.append(reading(i))
    return buf


def seqs(rs):
    return [r.seq for r in rs]


def segments(path):
    return sorted([n for n in os.listdir(path) if n[0] == "s"])


def size(name):
    return os.stat(name)[6]


def cut(name, n):
    # os.truncate/file.truncate are not on every port: rewrite the first n bytes.
    with open(name, "rb") as f:
        data = f.read(n)
    with open(name, "wb") as f:
        f.write(data)


def copy_dir(src, dst):
    os.mkdir(dst)
    for n in os.listdir(src):
        with open(src + "/" + n, "rb") as f:
            data = f.read()
        with open(dst + "/" + n, "wb") as f:
            f.write(data)


def test_order_and_sequence_numbers():
    buf = fill(fresh(), 40)
    got = buf.peek(40)
    assert seqs(got) == list(range(1, 41))
    for r in got:
        assert r == reading(r.seq - 1)
    assert buf.pending() == 40 and buf.head == 40 and buf.dropped == 0


def test_ack_persists_and_unacked_are_resent():
    path = fresh()
    buf = fill(path, 20)
    buf.peek(10)
    buf.ack(7)
    again = ReadingBuffer(path)
    assert again.pending() == 13
    assert seqs(again.peek(3)) == [8, 9, 10]  # 8..10 peeked but not acked: delivered again
    assert_raises(ValueError, again.ack, 21)


def test_overflow_drops_oldest_and_counts_across_reopen():
    path = fresh()
    buf = fill(path, 25, capacity=10)
    assert buf.pending() == 10 and buf.dropped == 15
    assert seqs(buf.peek(20)) == list(range(16, 26))
    again = ReadingBuffer(path, capacity=10)
    assert again.pending() == 10 and again.dropped == 15
    assert seqs(again.peek(20)) == list(range(16, 26))
    assert len(segments(path)) <= (10 + PER - 1) // PER + 1


def test_flash_use_bounded():
    path = fresh()
    buf = ReadingBuffer(path, capacity=20)
    for i in range(150):
        buf.append(reading(i))
        names = segments(path)
        assert len(names) <= 3
        for n in names:
            assert size(path + "/" + n) <= PER * SLOT_SIZE
    assert buf.dropped == 130


def test_clear():
    path = fresh()
    buf = fill(path, 30, capacity=10)
    buf.clear()
    assert buf.pending() == 0 and buf.dropped == 0 and segments(path) == []
    again = ReadingBuffer(path, capacity=10)
    assert again.head == 30 and again.pending() == 0
    again.append(reading(0))
    assert seqs(again.peek(5)) == [31]


def test_exact_decimal_text():
    path = fresh()
    values = {"heat_energy": "200.00", "temp_diff": "-0.005", "volume": "123456789",
              "e3": "-1234567890", "power": "0.000", "temp1": None}  # fmt: skip
    ReadingBuffer(path).append(Reading(values, time=1767225600))
    got = ReadingBuffer(path).peek(1)[0].values
    assert got == values
    for k in got:
        assert got[k] is None or type(got[k]) is str


def test_clock_unknown_marked_and_ordered():
    path = fresh()
    buf = ReadingBuffer(path)
    buf.append(reading(0, clock=False))
    buf.append(reading(1))
    buf.append(reading(2, clock=False))
    got = ReadingBuffer(path).peek(3)
    assert seqs(got) == [1, 2, 3]
    assert got[0].time is None and got[1].time == 1767225600 + 900 and got[2].time is None
    assert got[2].uptime == 120


def test_range_and_type_checks_before_writing():
    # MicroPython's struct would silently truncate these numbers: the buffer must refuse them.
    path = fresh()
    buf = ReadingBuffer(path)
    assert_raises(ValueError, buf.append, Reading({"a": "1"}, time=1 << 32))
    assert_raises(ValueError, buf.append, Reading({"a": "1"}, time=-1))
    assert_raises(ValueError, buf.append, Reading({"a": "1"}, uptime=1 << 32))
    assert_raises(TypeError, buf.append, Reading({"a": 1.5}))
    assert buf.pending() == 0 and os.listdir(path) == []


def test_slot_fits_esphome_plus_four_custom():
    path = fresh()
    buf = ReadingBuffer(path)
    values = {}
    for k in ESPHOME:
        values[k] = "1234567.890"
    for i in range(4):
        values["custom_%03d" % i] = "-123456.789"
    buf.append(Reading(values))
    assert buf.peek(1)[0].values == values
    values["custom_004"] = "1"
    e = assert_raises(ValueError, buf.append, Reading(values))
    assert "needs 263 bytes" in str(e)
    assert buf.pending() == 1


def test_power_loss_at_every_byte_of_the_last_slot():
    for n in (5, PER + 1):
        src = fresh()
        fill(src, n)
        last = segments(src)[-1]
        at = ((n - 1) % PER) * SLOT_SIZE
        intact = at + SLOT_SIZE  # a slot counts only when all of it is on flash
        for c in range(at, at + SLOT_SIZE + 1):
            work = fresh()
            copy_dir(src, work)
            cut(work + "/" + last, c)
            buf = ReadingBuffer(work)
            survived = n if c >= intact else n - 1
            got = buf.peek(n + 1)
            assert seqs(got) == list(range(1, survived + 1)), c
            for r in got:
                assert r == reading(r.seq - 1)
            buf.append(reading(100))
            got = ReadingBuffer(work).peek(n + 2)
            assert seqs(got) == list(range(1, survived + 2)), c
            assert got[-1] == reading(100)
            _rmtree(work)


def test_random_corruption_returns_no_garbage():
    state = [12345]

    def rnd(n):  # a small LCG: the same sequence on every port
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % n

    for _ in range(10):
        path = fresh()
        n = 1 + rnd(40)
        fill(path, n)
        touched = []
        for _ in range(1 + rnd(5)):
            seq = 1 + rnd(n)
            name = "%s/s%08x" % (path, (seq - 1) // PER)
            off = rnd(SLOT_SIZE)
            with open(name, "r+b") as f:
                f.seek(((seq - 1) % PER) * SLOT_SIZE + off)
                old = f.read(1)
                f.seek(((seq - 1) % PER) * SLOT_SIZE + off)
                f.write(bytes([old[0] ^ (1 + rnd(255))]))
            touched.append(seq)  # the CRC covers the whole slot, padding included
        got = ReadingBuffer(path).peek(n)
        for r in got:
            assert r == reading(r.seq - 1)
        assert seqs(got) == [s for s in range(1, n + 1) if s not in touched]


def test_torn_ack_state_falls_back():
    path = fresh()
    buf = fill(path, 10)
    buf.ack(3)  # generation 1 -> ack1
    buf.ack(6)  # generation 2 -> ack0
    cut(path + "/ack0", 7)
    assert seqs(ReadingBuffer(path).peek(1)) == [4]


def test_layout_change_counts_undelivered_as_dropped():
    path = fresh()
    buf = fill(path, 12)
    buf.ack(4)
    big = ReadingBuffer(path, slot_size=512)
    assert big.pending() == 0 and big.dropped == 8 and big.head == 12


def _reclaims():
    # Whether gc.collect() frees garbage while a script runs: the WASM port only flags the
    # collection and runs it when control returns to JavaScript (MICROPY_GC_SPLIT_HEAP_AUTO).
    gc.collect()
    a = gc.mem_alloc()
    x = bytearray(20000)
    x = None  # noqa: F841
    gc.collect()
    return gc.mem_alloc() < a + 10000


def _alloc(fn):
    gc.collect()
    a = gc.mem_alloc()
    fn()
    return gc.mem_alloc() - a


def test_heap_bounded():
    path = fresh()
    buf = ReadingBuffer(path, capacity=600)
    values = {}
    for k in ESPHOME:
        values[k] = "1234567.890"
    r = Reading(values, time=1767225600)

    def cycle():
        buf.append(r)
        rs = buf.peek(4)
        buf.ack(rs[0].seq)

    for _ in range(5):
        buf.append(r)
    cycle()
    small = _alloc(cycle)  # 5 pending, peek(4) decodes 4
    for _ in range(400):
        buf.append(r)
    large = _alloc(cycle)  # ~400 pending: no per-record state may show up
    print("buffer: one append+peek(4)+ack allocates %d B (5 pending), %d B (%d pending)"
          % (small, large, buf.pending()))  # fmt: skip
    assert large <= small + 256, (small, large)
    assert small < 8192
    # Opening: bitmap and slot buffer are sized by capacity, not by what is stored; the scan
    # allocates nothing per slot, only a path and a file object per segment file.
    empty = fresh()
    ReadingBuffer(empty, capacity=600)
    o_empty = _alloc(lambda: ReadingBuffer(empty, capacity=600))
    o_full = _alloc(lambda: ReadingBuffer(path, capacity=600))
    files = len(segments(path))
    print("buffer: open allocates %d B (empty), %d B (%d pending, %d files)"
          % (o_empty, o_full, buf.pending(), files))  # fmt: skip
    assert o_full <= o_empty + 320 * files, (o_empty, o_full, files)
    if _reclaims():  # a port with a working gc.collect(): nothing may be retained
        gc.collect()
        a = gc.mem_alloc()
        for _ in range(200):
            cycle()
        gc.collect()
        assert gc.mem_alloc() - a < 2048


def test_open_scan_time_full_capacity():
    path = fresh()
    values = {}
    for k in ESPHOME:
        values[k] = "1234567.890"
    buf = ReadingBuffer(path)
    for i in range(CAPACITY):
        buf.append(Reading(values, time=1767225600 + 900 * i))
    best = None
    for _ in range(3):
        t0 = time.ticks_us()
        again = ReadingBuffer(path)
        dt = time.ticks_diff(time.ticks_us(), t0)
        best = dt if best is None or dt < best else best
    assert again.pending() == CAPACITY
    print("buffer: open + scan of %d slots: %d us" % (CAPACITY, best))
    t0 = time.ticks_us()
    got = again.peek(CAPACITY)
    print("buffer: peek(%d): %d us" % (CAPACITY, time.ticks_diff(time.ticks_us(), t0)))
    assert len(got) == CAPACITY


run(globals(), "buffer")
