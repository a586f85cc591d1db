# The meter link logic under real MicroPython 1.29 with a fake UART and a fake clock.

from fake_clock import FakeClock
from fake_uart import FakeUart
from kmp import frame
from kmp.errors import CrcError, FrameError, NoAnswer
from kmp.link import MeterLink, wire_ms
from mptest import assert_raises, run
from simple_meter import SEVEN, VALUES, SimpleMeter, make


def test_read_seven_with_echo_paced():
    meter = SimpleMeter(dict(VALUES), echo=True)
    _, uart, _, link = make(meter, byte_ms=9.17)
    res = link.read(SEVEN)
    assert uart.writes == 1
    assert res.values[0x3C].text() == "123456.789"
    assert res.values[0x59].text() == "25.00" and res.values[0x59].unit_name() == "K"
    assert len(res.values) == 7 and res.missing == [] and res.error is None


def test_batches_of_eight():
    _, _, meter, link = make()
    rids = SEVEN + [0x3EC, 0x63]
    res = link.read(rids)
    assert meter.requests == [rids[:8], rids[8:]] and len(res.values) == 9


def test_unsupported_remembered():
    values = dict(VALUES)
    del values[0x59]
    meter = SimpleMeter(values)
    _, _, _, link = make(meter)
    res = link.read(SEVEN)
    assert res.unsupported == [0x59] and meter.requests == [SEVEN, [0x59]]
    link.read(SEVEN)
    assert 0x59 not in meter.requests[-1]


def test_asleep_is_no_answer():
    meter = SimpleMeter(dict(VALUES), echo=True)
    meter.asleep = True
    clock, uart, _, link = make(meter, retries=1)
    res = link.read(SEVEN)
    assert res.no_answer and isinstance(res.error, NoAnswer)
    assert uart.writes == 2 and link.timeouts == 2 and clock.slept >= 3 * 1600
    assert_raises(NoAnswer, link.get_type)


def test_crc_error_counted_and_retried():
    calls = []
    good = SimpleMeter(dict(VALUES))

    def first_bad(wire):
        out = good(wire)
        calls.append(1)
        if len(calls) == 1:
            delay, resp = out[0]
            resp = bytearray(resp)
            resp[-2] ^= 0x01
            out = [(delay, bytes(resp))]
        return out

    _, _, _, link = make(first_bad)
    res = link.read(SEVEN)
    assert len(res.values) == 7 and link.crc_errors == 1 and link.retries_done == 1
    _, _, _, link = make(lambda w: [(5, bytes(bytearray(good(w)[0][1])[:-3]) + b"\x00\x00\x0d")],
                         retries=0)  # fmt: skip
    assert isinstance(link.read([0x3C]).error, CrcError)


def test_identity_and_counters():
    _, _, _, link = make()
    assert link.get_type() == (0x0050, "B1") and link.get_serial() == 12345678
    c = link.counters()
    assert c["requests"] == 2 and c["responses"] == 2
    assert c["bytes_tx"] == len(frame.request_get_type()) + len(frame.request_get_serial())
    assert wire_ms(120) == 1100


def test_fault_matrix_with_the_virtual_meter():
    from virtual_meter import FaultyLine, VirtualMeter

    for kw in ({"echo": True, "stray_zeros": 0.5}, {"corrupt_rate": 0.05, "echo": True},
               {"latency_ms": (1400, 1500)}, {"omit": (0x59,)}):  # fmt: skip
        clock = FakeClock()
        meter = VirtualMeter(seed=5)
        line = FaultyLine(meter, seed=5, **kw)
        link = MeterLink(FakeUart(clock, line, byte_ms=9.17), clock=clock)
        for _ in range(25):
            meter.advance(60)
            res = link.read(SEVEN)
            for rid, reg in res.values.items():
                assert (reg.unit, reg.mantissa, reg.exponent) == meter.truth(rid)
        assert len(res.values) == (6 if "omit" in kw else 7)
    line.asleep = True
    res = link.read(SEVEN)
    assert res.no_answer and isinstance(res.error, NoAnswer)


def test_silent_alone_is_unsupported_and_the_meter_answered():
    meter = SimpleMeter(dict(VALUES), silent=lambda rids: rids == [0x60])
    clock, _, _, link = make(meter, retries=1)
    rids = SEVEN + [0x60]
    res = link.read(rids)  # the first silence may be the optical link: missing this once
    assert not res.no_answer and len(res.values) == 7
    assert res.unsupported == [] and res.missing == [0x60]
    clock.advance(60000)
    res = link.read(rids)  # the second in a row: the meter lacks it
    assert not res.no_answer and res.error is None and len(res.values) == 7
    assert res.unsupported == [0x60] and res.missing == []
    clock.advance(60000)
    meter.requests.clear()
    res = link.read(rids)
    assert meter.requests == [SEVEN] and not res.no_answer
    link.forget_unsupported()
    link.read(rids)
    assert meter.requests[1] == rids


def test_later_batch_silent_is_not_no_answer():
    meter = SimpleMeter(dict(VALUES), silent=lambda rids: 0x3EC in rids)
    _, _, _, link = make(meter, retries=0)
    rids = SEVEN + [0x63, 0x3EC, 0x60]
    res = link.read(rids)
    assert not res.no_answer and isinstance(res.error, NoAnswer) and len(res.values) == 8
    assert sorted(res.missing) == [0x60, 0x3EC] and res.unsupported == []


def test_quiet_before_any_request_after_a_failure():
    meter = SimpleMeter(dict(VALUES))
    times = []

    def stalls(wire):
        times.append(clock.now)
        if wire != frame.request_get_registers([0x3C]):
            return meter(wire)
        resp = frame.encode_frame(0x3F, 0x10, b"\x00\x3c\x08\x01\x00\x05", 0x40)
        return [(30, resp[:5])]

    clock, _, _, link = make(stalls, retries=0)
    assert isinstance(link.read([0x3C]).error, FrameError)
    assert link.get_serial() == 12345678
    assert times[1] - (times[0] + 30) >= 1600
    link.get_type()
    assert times[2] - times[1] < 1000  # after a good exchange, no wait


def test_stray_ack_before_the_answer():
    meter = SimpleMeter(dict(VALUES), stray=b"\x06")
    _, _, _, link = make(meter, byte_ms=9.17)
    assert len(link.read(SEVEN).values) == 7 and link.get_type() == (0x0050, "B1")
    assert link.retries_done == 0 and link.frame_errors == 0


def test_feed_while_waiting():
    meter = SimpleMeter(dict(VALUES))
    meter.asleep = True
    fed = []
    clock, _, _, link = make(meter, timeout_ms=10000, retries=2, feed=lambda: fed.append(clock.now))
    t0 = clock.now
    assert link.read(SEVEN).no_answer
    gaps = [b - a for a, b in zip([t0] + fed, fed + [clock.now])]
    assert clock.now - t0 >= 30000 and max(gaps) <= 1100


run(globals(), "link")
