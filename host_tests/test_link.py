# The meter link against a fake UART on a fake clock: batching, echo, leftovers, missing and
# unsupported registers, retries and their quiet time, deadlines, counters.

import pytest

from kmp import frame, strict
from kmp.errors import CrcError, NoAnswer
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
