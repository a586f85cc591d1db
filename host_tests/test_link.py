# The meter link against a fake UART on a fake clock: batching, echo, leftovers, missing and
# unsupported registers, retries and their quiet time, deadlines, counters.

import pytest

from kmp import frame, strict
from kmp.errors import CrcError, FrameError, NoAnswer
from kmp.link import wire_ms
from simple_meter import SEVEN, VALUES, SimpleMeter, make


def test_seven_sensors_in_one_request():
    clock, uart, meter, link = make(byte_ms=9.17)
    res = link.read(SEVEN)
    assert uart.writes == 1 and meter.requests == [SEVEN]
    assert {rid: r.text() for rid, r in res.values.items()} == {
        0x3C: "123456.789", 0x50: "12.3", 0x56: "65.12", 0x57: "40.12", 0x59: "25.00",
        0x4A: "456", 0x44: "12345.67",
    }  # fmt: skip
    assert res.missing == [] and res.error is None and not res.no_answer
    assert link.requests == 1 and link.responses == 1 and link.retries_done == 0
    assert link.bytes_tx == len(frame.request_get_registers(SEVEN))


def test_nine_registers_take_two_requests():
    rids = SEVEN + [0x3EC, 0x63]
    _, uart, meter, link = make()
    res = link.read(rids)
    assert meter.requests == [rids[:8], rids[8:]]
    assert sorted(res.values) == sorted(rids)


def test_requests_are_built_once_and_reused():
    _, uart, _, link = make()
    link.read(SEVEN)
    first = bytes(uart.written)
    link.read(SEVEN)
    assert bytes(uart.written) == first * 2
    assert len(link._requests) == 1


def test_echo_and_noise_do_not_break_a_read():
    meter = SimpleMeter(dict(VALUES), echo=True)
    clock, uart, _, link = make(meter, byte_ms=9.17)
    uart.inject(b"\x00\x40\x3f\x10garbage\x0d\x00")  # leftovers from an earlier exchange
    clock.advance(500)
    res = link.read(SEVEN)
    assert len(res.values) == 7 and link.retries_done == 0
    assert link.bytes_rx > 2 * len(frame.request_get_registers(SEVEN))


def test_garbage_during_the_answer_is_rejected_then_retried():
    meter = SimpleMeter(dict(VALUES), echo=True)
    clock, uart, _, link = make(meter, byte_ms=9.17)
    uart.inject(b"\x00\x40\x3f\x10garbage\x0d\x00")  # arrives while we wait for the answer
    res = link.read(SEVEN)
    assert len(res.values) == 7 and link.retries_done == 1 and link.crc_errors == 1


def test_missing_register_retried_alone_then_remembered_unsupported():
    values = dict(VALUES)
    del values[0x59]
    meter = SimpleMeter(values)
    _, _, _, link = make(meter)
    res = link.read(SEVEN)
    assert 0x59 not in res.values and res.unsupported == [0x59] and res.missing == []
    assert meter.requests == [SEVEN, [0x59]]
    meter.requests.clear()
    res = link.read(SEVEN)
    assert meter.requests == [[r for r in SEVEN if r != 0x59]]  # not asked again
    assert res.unsupported == [0x59]
    link.forget_unsupported()
    link.read(SEVEN)
    assert meter.requests[-2] == SEVEN


def test_missing_once_is_recovered_by_the_single_retry():
    calls = []
    base = SimpleMeter(dict(VALUES))

    def flaky(wire):  # the first answer omits temp2; the retry has it
        out = base(wire)
        calls.append(1)
        if len(calls) == 1:
            vals = dict(VALUES)
            del vals[0x57]
            return SimpleMeter(vals)(wire)
        return out

    _, _, _, link = make(flaky)
    res = link.read(SEVEN)
    assert res.values[0x57].text() == "40.12" and res.unsupported == []


def test_registers_never_misattributed():
    def liar(wire):  # answers with a register we did not ask for
        f = strict.decode_frame(wire)
        from kmp import messages

        data = messages.encode_register(0x3C, 8, 1, 0) + messages.encode_register(0x99, 8, 2, 0)
        del f
        return [(10, frame.encode_frame(0x3F, 0x10, data, frame.START_FROM_METER))]

    _, _, _, link = make(liar)
    res = link.read([0x3C, 0x44])
    assert list(res.values) == [0x3C] and 0x99 not in res.values


def test_meter_asleep_reports_no_answer_and_waits_quiet_between_tries():
    meter = SimpleMeter(dict(VALUES), echo=True)
    meter.asleep = True
    clock, uart, _, link = make(meter, retries=2)
    t0 = clock.now
    res = link.read(SEVEN + [0x3EC, 0x63])
    assert res.no_answer and isinstance(res.error, NoAnswer) and res.values == {}
    assert uart.writes == 3  # one chunk, three tries; the second chunk is not tried
    assert link.timeouts == 3 and link.retries_done == 2
    # each try waits for the first byte, each retry waits 1.6 s of quiet first
    assert clock.now - t0 >= 3 * 1600 + 2 * 1600
    assert sorted(res.missing) == sorted(SEVEN + [0x3EC, 0x63])


def test_no_answer_is_distinct_from_garbled():
    def garbled(wire):
        resp = bytearray(frame.encode_frame(0x3F, 0x10, b"\x00\x3c\x08\x01\x00\x05", 0x40))
        resp[-2] ^= 0xFF
        return [(30, bytes(resp))]

    _, _, _, link = make(garbled, retries=1)
    res = link.read([0x3C])
    assert isinstance(res.error, CrcError) and not res.no_answer
    assert link.crc_errors == 2 and link.timeouts == 0


def test_stalled_response_ends_at_the_gap_deadline():
    def stalls(wire):
        resp = frame.encode_frame(0x3F, 0x10, b"\x00\x3c\x08\x01\x00\x05", 0x40)
        return [(30, resp[:5])]

    clock, _, _, link = make(stalls, retries=0, gap_ms=300)
    t0 = clock.now
    res = link.read([0x3C])
    assert type(res.error).__name__ == "FrameError" and "stopped" in str(res.error)
    assert link.frame_errors == 1
    assert clock.now - t0 <= 30 + 300 + 50


def test_latency_up_to_the_deadline_is_fine():
    meter = SimpleMeter(dict(VALUES), latency_ms=1500)
    _, _, _, link = make(meter, byte_ms=9.17)
    assert len(link.read(SEVEN).values) == 7


def test_identity():
    _, _, _, link = make()
    assert link.get_type() == (0x0050, "B1")
    assert link.get_serial() == 12345678


def test_identity_no_answer_raises():
    meter = SimpleMeter(dict(VALUES))
    meter.asleep = True
    _, _, _, link = make(meter, retries=0)
    with pytest.raises(NoAnswer):
        link.get_serial()


def test_counters_and_exchange_time():
    _, _, _, link = make(byte_ms=9.17)
    link.read(SEVEN)
    c = link.counters()
    assert c["requests"] == 1 and c["responses"] == 1 and c["bytes_rx"] > 0
    # the response is paced at 1200 baud: the exchange lasts at least its wire time
    resp_len = c["bytes_rx"]
    assert c["last_exchange_ms"] >= 50 + (resp_len - 1) * 9


def test_wire_ms():
    assert wire_ms(1) == 10  # 11 bits at 1200 baud = 9.17 ms, rounded up
    assert wire_ms(120) == 1100


# -- one silence in an answered cycle (review finding 1) ---------------------------------------


def test_silent_when_asked_alone_is_unsupported_not_no_answer():
    # An MC403 answers a batch without 0x60 and says nothing when asked for 0x60 alone
    # (PROTOCOL.md sections 3.4 and 5): the meter answered. The first such silence may be the
    # optical link (0x60 missing, an error, this once); the second in a row means unsupported.
    meter = SimpleMeter(dict(VALUES), silent=lambda rids: rids == [0x60])
    clock, _, _, link = make(meter, retries=2)
    rids = SEVEN + [0x60]
    res = link.read(rids)
    assert not res.no_answer and len(res.values) == 7 and isinstance(res.error, NoAnswer)
    assert res.unsupported == [] and res.missing == [0x60]
    assert meter.requests == [rids, [0x60], [0x60], [0x60]]
    clock.advance(60000)
    res = link.read(rids)
    assert not res.no_answer and len(res.values) == 7 and res.error is None
    assert res.unsupported == [0x60] and res.missing == []
    meter.requests.clear()
    clock.advance(60000)
    t0, timeouts = clock.now, link.timeouts
    res = link.read(rids)
    assert meter.requests == [SEVEN] and not res.no_answer and res.error is None
    assert link.timeouts == timeouts and clock.now - t0 < 1600  # no silent tries any more
    link.forget_unsupported()
    link.read(rids)
    assert meter.requests[1] == rids  # asked again after forget_unsupported()


def test_one_silence_of_a_register_that_answers_again_is_forgotten():
    # A transient silence (the IR link, not the meter) must not hide a register that the meter
    # has: it answers in the next cycle, and a later silence starts the count again.
    quiet = [True]
    values = dict(VALUES)
    values[0x60] = (8, 123, 0)
    meter = SimpleMeter(values, silent=lambda rids: quiet[0] and 0x60 in rids)
    clock, _, _, link = make(meter, retries=0)
    rids = SEVEN + [0x3EC, 0x60]  # 0x60 alone in the second request
    assert link.read(rids).missing == [0x60]
    quiet[0] = False
    clock.advance(60000)
    assert 0x60 in link.read(rids).values
    quiet[0] = True
    clock.advance(60000)
    res = link.read(rids)
    assert res.missing == [0x60] and res.unsupported == []  # counted from one again


def test_silent_last_batch_of_one_is_unsupported_too():
    # Nine registers: the ninth goes alone in a second request; silence there (twice in a row)
    # while the first request was answered is the same evidence as the one-register retry.
    meter = SimpleMeter(dict(VALUES), silent=lambda rids: rids == [0x60])
    clock, _, _, link = make(meter, retries=1)
    rids = SEVEN + [0x3EC, 0x60]
    res = link.read(rids)
    assert not res.no_answer and res.missing == [0x60] and res.unsupported == []
    assert meter.requests == [rids[:8], [0x60], [0x60]]
    clock.advance(60000)
    res = link.read(rids)
    assert not res.no_answer and res.error is None and res.unsupported == [0x60]
    clock.advance(60000)
    meter.requests.clear()
    assert len(link.read(rids).values) == 8 and meter.requests == [rids[:8]]


def test_a_later_batch_unanswered_is_missing_not_no_answer():
    rids = SEVEN + [0x63, 0x3EC, 0x60]  # second batch: 0x3EC and 0x60
    meter = SimpleMeter(dict(VALUES), silent=lambda asked: 0x3EC in asked)
    clock, _, _, link = make(meter, retries=0)
    res = link.read(rids)
    assert meter.requests == [rids[:8], [0x3EC, 0x60]]
    assert not res.no_answer and isinstance(res.error, NoAnswer)
    assert sorted(res.missing) == [0x60, 0x3EC] and res.unsupported == []


def test_retry_garbled_leaves_the_register_missing():
    values = dict(VALUES)
    del values[0x59]
    base = SimpleMeter(values)

    def garbles_single(wire):
        out = base(wire)
        if base.requests[-1] == [0x59]:
            delay, resp = out[0]
            resp = bytearray(resp)
            resp[-2] ^= 0x01
            out = [(delay, bytes(resp))]
        return out

    _, _, _, link = make(garbles_single, retries=1)
    res = link.read(SEVEN)
    assert res.missing == [0x59] and res.unsupported == [] and not res.no_answer
    assert res.error is not None and not isinstance(res.error, NoAnswer)


def test_garbled_then_silent_is_not_no_answer():
    # The meter did say something (a bad frame), then nothing: it is awake.
    calls = []

    def garbled_then_silent(wire):
        calls.append(1)
        if len(calls) == 1:
            return [(30, b"\x40\x3f\x10\x00\x3c\x0d")]
        return []

    _, _, _, link = make(garbled_then_silent, retries=2)
    res = link.read(SEVEN)
    assert not res.no_answer and not isinstance(res.error, NoAnswer)


# -- quiet after any failed exchange (review finding 2) ----------------------------------------


def _write_times(clock, uart):
    """Record the fake time of every request written to the uart."""
    times = []
    inner = uart.responder

    def respond(wire):
        times.append(clock.now)
        return inner(wire)

    uart.responder = respond
    return times


def _garble(out):
    delay, resp = out[-1]
    resp = bytearray(resp)
    resp[-2] ^= 0x01
    return out[:-1] + [(delay, bytes(resp))]


def test_quiet_before_the_next_batch_after_a_failed_one():
    good = SimpleMeter(dict(VALUES))

    def garbles_first_batch(wire):
        out = good(wire)
        return _garble(out) if 0x3C in good.requests[-1] else out

    clock, uart, _, link = make(garbles_first_batch, byte_ms=9.17, retries=2)
    times = _write_times(clock, uart)
    res = link.read(SEVEN + [0x3EC, 0x63])
    assert len(times) == 4 and sorted(res.values) == [0x63] and not res.no_answer
    # the next batch waits the same 1.6 s of quiet as a retry of the failed one
    assert times[3] - times[2] >= 50 + 1600
    assert times[3] - times[2] >= times[2] - times[1] - 10
    # after a good exchange, no quiet wait
    link.read([0x63])
    assert times[4] - times[3] < 1000


def test_quiet_after_a_stalled_reply_before_any_next_request():
    meter = SimpleMeter(dict(VALUES))

    def stalls(wire):
        if wire != frame.request_get_registers([0x3C]):
            return meter(wire)
        resp = frame.encode_frame(0x3F, 0x10, b"\x00\x3c\x08\x01\x00\x05", 0x40)
        return [(30, resp[:5])]

    clock, uart, _, link = make(stalls, retries=0)
    times = _write_times(clock, uart)
    assert isinstance(link.read([0x3C]).error, FrameError)
    assert link.get_type() == (0x0050, "B1")
    assert times[1] - (times[0] + 30) >= 1600  # 1.6 s after the last byte heard


def test_quiet_after_a_failed_identity_before_the_read():
    meter = SimpleMeter(dict(VALUES))

    def garbles_type(wire):
        out = meter(wire)
        return _garble(out) if wire == frame.request_get_type() else out

    clock, uart, _, link = make(garbles_type, retries=0)
    times = _write_times(clock, uart)
    with pytest.raises(CrcError):
        link.get_type()
    assert len(link.read(SEVEN).values) == 7
    assert times[1] - times[0] >= 1600


# -- a stray 0x06 before the answer (review finding 3) -----------------------------------------


def test_stray_ack_before_the_answer_is_ignored():
    meter = SimpleMeter(dict(VALUES), stray=b"\x06\x00\x06")
    _, _, _, link = make(meter, byte_ms=9.17)
    res = link.read(SEVEN)
    assert len(res.values) == 7 and res.error is None
    assert link.get_type() == (0x0050, "B1") and link.get_serial() == 12345678
    assert link.retries_done == 0 and link.frame_errors == 0 and link.requests == 3


# -- watchdog hook (review finding 5) ----------------------------------------------------------


def test_feed_is_called_through_the_longest_silent_read():
    meter = SimpleMeter(dict(VALUES), echo=True)
    meter.asleep = True
    clock = None
    fed = []

    def feed():
        fed.append(clock.now)

    clock, uart, _, link = make(meter, byte_ms=9.17, timeout_ms=10000, retries=5, feed=feed)
    t0 = clock.now
    res = link.read(SEVEN)
    assert res.no_answer and uart.writes == 6
    assert clock.now - t0 >= 6 * 10000 + 5 * 1600  # the ~69 s transaction of the review
    gaps = [b - a for a, b in zip([t0] + fed, fed + [clock.now])]
    assert max(gaps) <= 1100, max(gaps)
    assert len(fed) <= (clock.now - t0) // 50  # cheap: not once every poll of 5 ms


def test_feed_during_a_good_read_and_none_by_default():
    fed = []
    _, _, _, link = make(byte_ms=9.17, feed=lambda: fed.append(1))
    assert len(link.read(SEVEN).values) == 7
    assert len(fed) <= 2
    _, _, _, link = make(byte_ms=9.17)
    assert link._feed is None and len(link.read(SEVEN).values) == 7
