# The virtual MULTICAL 403 (tools/virtual_meter.py): every answer decoded with the codec and
# checked against truth(), the physics of the evolving values, silence where a meter is silent,
# wire encodings (NoB mix, stuffing), and the fault model of the optical line.

import datetime

import pytest

import virtual_meter as vm
from fake_clock import FakeClock
from fake_uart import FakeUart
from kmp import frame, messages, strict
from kmp.errors import KmpError
from kmp.link import MeterLink
from kmp.value import format_decimal

ALL = vm.DEFAULT_REGISTERS
SEVEN = [vm.E1, vm.POWER, vm.T1, vm.T2, vm.TDIFF, vm.FLOW, vm.V1]


def ask(meter, rids, address=0x3F):
    """GetRegister through handle(); returns {rid: Register} decoded by the codec."""
    resp = meter.handle(frame.request_get_registers(rids, address))
    assert resp is not None
    f = strict.decode_frame(resp, frame.START_FROM_METER, address, frame.CID_GET_REGISTER)
    records = messages.parse_registers(f.data)
    out = {r.rid: r for r in records}
    assert len(out) == len(records)
    return out


def ask_all(meter):
    out = {}
    for i in range(0, len(ALL), 8):
        out.update(ask(meter, list(ALL[i : i + 8])))
    return out


# -- answers against truth ------------------------------------------------------------------


def test_every_register_decodes_to_truth_over_time():
    meter = vm.VirtualMeter(seed=3)
    for step in (0, 1, 7, 60, 3600, 86400):
        meter.advance(step)
        got = ask_all(meter)
        assert sorted(got) == sorted(ALL)
        for rid, reg in got.items():
            unit, nob, exp = meter.encoding(rid)
            assert (reg.unit, reg.nob, reg.exponent) == (unit, nob, exp), hex(rid)
            assert (reg.unit, reg.mantissa, reg.exponent) == meter.truth(rid), hex(rid)
            assert reg.text() == meter.truth_text(rid)


def test_get_type_and_serial():
    meter = vm.VirtualMeter(serial=19088743, meter_type=0x0004, sw_revision=0x0601)
    f = strict.decode_frame(meter.handle(frame.request_get_type()), frame.START_FROM_METER)
    assert messages.parse_type(f.data) == (0x0004, "F1")
    # Byte-identical to the Kamstrup document's examples (PROTOCOL.md 3.2, 3.3).
    assert meter.handle(frame.request_get_type()).hex() == "403f0100041bf90126990d"
    assert meter.handle(frame.request_get_serial()).hex() == "403f0201234567e9560d"
    d = vm.VirtualMeter()
    f = strict.decode_frame(d.handle(frame.request_get_serial()), frame.START_FROM_METER)
    assert messages.parse_serial(f.data) == 67051653 == d.truth(vm.SERIAL_NO)[1]
    assert d.truth(vm.SERIAL_NO)[0] == 0x33


def test_start_values_and_texts():
    meter = vm.VirtualMeter()
    assert meter.truth_text(vm.E1) == "1234.567"
    assert meter.truth(vm.E1) == (8, 1234567, -3)
    assert meter.truth_text(vm.V1) == "9876.54"
    assert meter.truth_text(vm.T1) == "68.50"
    assert meter.truth_text(vm.T2) == "39.20"
    assert meter.truth_text(vm.TDIFF) == "29.30"
    assert meter.truth_text(vm.E3) == "0.000"
    assert meter.truth(vm.INFO) == (0, 0, 0)
    assert meter.truth(vm.CLOCK) == (47, 63000, 0)
    assert meter.truth(vm.DATE) == (48, 250115, 0)
    assert meter.truth(vm.HOURS) == (46, 26789, 0)
    assert meter.truth_text(0x1234) is None and meter.truth(0x1234) is None


# -- evolving values ------------------------------------------------------------------------


def test_totals_only_grow_and_measurements_stay_plausible():
    meter = vm.VirtualMeter(seed=11)
    totals = (vm.E1, vm.V1, vm.E8, vm.E9, vm.HOURS, vm.E3)
    last = {rid: meter.truth(rid)[1] for rid in totals}
    grew = set()
    for i in range(2000):
        meter.advance(1 + i % 97)
        for rid in totals:
            now = meter.truth(rid)[1]
            assert now >= last[rid], hex(rid)
            if now > last[rid]:
                grew.add(rid)
            last[rid] = now
        t1, t2, dt = (meter.truth(r)[1] for r in (vm.T1, vm.T2, vm.TDIFF))
        assert 5500 <= t1 <= 8000 and 3000 <= t2 <= 4500
        assert dt == t1 - t2  # exactly, same resolution
        assert meter.truth(vm.TDIFF)[2] == meter.truth(vm.T1)[2] == -2
        assert 0 < meter.truth(vm.FLOW)[1] <= 1500
    assert grew == {vm.E1, vm.V1, vm.E8, vm.E9, vm.HOURS}  # E3: no cooling in a heating system


def test_measurements_move():
    meter = vm.VirtualMeter(seed=5)
    seen = {rid: set() for rid in (vm.T1, vm.T2, vm.FLOW, vm.POWER)}
    for _ in range(50):
        meter.advance(vm.TICK_MS // 1000)
        for rid in seen:
            seen[rid].add(meter.truth(rid)[1])
    for rid, values in seen.items():
        assert len(values) > 10, hex(rid)


def test_power_follows_flow_and_temperature_difference():
    meter = vm.VirtualMeter(seed=2)
    for _ in range(300):
        meter.advance(17)
        flow = meter.truth(vm.FLOW)[1]  # l/h
        dt = meter.truth(vm.TDIFF)[1]  # 0.01 K
        power = meter.truth(vm.POWER)[1]  # 0.1 kW
        expect_w = flow / 3600 * 4.18 * dt / 100 * 1000
        assert abs(power * 100 - expect_w) <= 100, (flow, dt, power)


def test_energy_and_volume_integrate_power_and_flow():
    meter = vm.VirtualMeter(seed=9)
    e0, v0 = meter.truth(vm.E1)[1], meter.truth(vm.V1)[1]
    energy_kj = volume_l = 0.0
    for _ in range(720):  # one hour in ticks; values are constant within a tick
        power_kw = meter.truth(vm.POWER)[1] / 10
        flow = meter.truth(vm.FLOW)[1]
        energy_kj += power_kw * vm.TICK_MS / 1000
        volume_l += flow * vm.TICK_MS / 3600000
        meter.advance_ms(vm.TICK_MS)
    de_mj = meter.truth(vm.E1)[1] - e0  # 0.001 GJ
    dv_l = (meter.truth(vm.V1)[1] - v0) * 10  # 0.01 m3
    assert abs(de_mj - energy_kj / 1000) <= 0.01 * energy_kj / 1000 + 1
    assert abs(dv_l - volume_l) <= 0.01 * volume_l + 10
    assert de_mj > 0 and dv_l > 0


def test_high_res_energy_is_truncated_like_a_403():
    meter = vm.VirtualMeter(energy_unit=vm.ENERGY_KWH)
    kwh = meter.truth(vm.E1)[1]
    wh = meter.truth(vm.E1_HIGH_RES)
    assert wh[0] == 1 and wh[2] == 0
    assert kwh * 1000 > 10**7  # the default total is large enough to be truncated
    assert wh[1] < 10**7 and (kwh * 1000) % 10**7 <= wh[1] < (kwh * 1000) % 10**7 + 1000
    meter.advance(3600)
    kwh2 = meter.truth(vm.E1)[1]
    assert (kwh2 * 1000) % 10**7 <= meter.truth(vm.E1_HIGH_RES)[1] < (kwh2 * 1000) % 10**7 + 1000


@pytest.mark.parametrize(
    "unit, text",
    [(vm.ENERGY_GJ, "1234.567"), (vm.ENERGY_KWH, "342935"), (vm.ENERGY_MWH, "342.935")],
)
def test_energy_units(unit, text):
    meter = vm.VirtualMeter(energy_unit=unit)
    got = ask(meter, [vm.E1, vm.E3])
    assert got[vm.E1].unit == got[vm.E3].unit == unit
    assert got[vm.E1].nob == 4
    assert got[vm.E1].text() == text


def test_bad_energy_unit_rejected():
    with pytest.raises(ValueError):
        vm.VirtualMeter(energy_unit=12)


def test_clock_date_hours_and_period_rollover():
    meter = vm.VirtualMeter(start=(2024, 12, 31, 23, 59, 50), hours=100)
    assert meter.truth(vm.CLOCK)[1] == 235950 and meter.truth(vm.DATE)[1] == 241231
    meter.advance(20)
    assert meter.truth(vm.CLOCK)[1] == 10 and meter.truth(vm.DATE)[1] == 250101
    # New year: the yearly and monthly max/min start again, all dated today.
    dates = (vm.MAX_FLOW_Y_DATE, vm.MIN_FLOW_Y_DATE, vm.MAX_POWER_Y_DATE, vm.MIN_POWER_Y_DATE)
    for rid in dates:
        assert meter.truth(rid)[1] == 250101, hex(rid)
        assert meter.truth(rid + (vm.MAX_FLOW_M_DATE - vm.MAX_FLOW_Y_DATE))[1] == 250101
    meter.advance(3600 * 24 * 3 + 3590)
    assert meter.truth(vm.DATE)[1] == 250104 and meter.truth(vm.CLOCK)[1] == 10000
    assert meter.truth(vm.HOURS)[1] == 100 + 73


def test_new_month_keeps_the_year():
    meter = vm.VirtualMeter(seed=1, start=(2025, 1, 31, 23, 59, 50))
    meter.advance(20)
    assert meter.truth(vm.DATE)[1] == 250201
    month = [meter.truth(r)[1] for r in (vm.MAX_FLOW_M_DATE, vm.MIN_FLOW_M_DATE)]
    year = [meter.truth(r)[1] for r in (vm.MAX_FLOW_Y_DATE, vm.MIN_FLOW_Y_DATE)]
    assert month == [250201, 250201] and 250131 in year


def test_max_min_and_averages_follow_the_samples():
    meter = vm.VirtualMeter(seed=4, start=(2025, 3, 1, 0, 0, 0))
    # The period starts with the first sample, then takes one per tick.
    flows, powers = [meter.truth(vm.FLOW)[1]], [meter.truth(vm.POWER)[1]]
    t1s, t2s = [], []
    for _ in range(400):
        # Values hold still within a tick, so each tick weighs the same in the averages.
        t1s.append(meter.truth(vm.T1)[1])
        t2s.append(meter.truth(vm.T2)[1])
        meter.advance_ms(vm.TICK_MS)
        flows.append(meter.truth(vm.FLOW)[1])
        powers.append(meter.truth(vm.POWER)[1])
    for rid, want in (
        (vm.MAX_FLOW_M, max(flows)),
        (vm.MIN_FLOW_M, min(flows)),
        (vm.MAX_POWER_Y, max(powers)),
        (vm.MIN_POWER_Y, min(powers)),
        (vm.AVG_T1_M, sum(t1s) // len(t1s)),
        (vm.AVG_T1_Y, sum(t1s) // len(t1s)),
        (vm.AVG_T2_M, sum(t2s) // len(t2s)),
        (vm.AVG_T2_Y, sum(t2s) // len(t2s)),
    ):
        assert meter.truth(rid)[1] == want, hex(rid)
    assert meter.truth(vm.MAX_FLOW_Y_DATE)[1] == 250301


def test_same_seed_same_meter_and_time_partitions_agree():
    a, b, c = vm.VirtualMeter(seed=42), vm.VirtualMeter(seed=42), vm.VirtualMeter(seed=43)
    for _ in range(30):
        a.advance(37)
        b.advance(20)
        b.advance(17)
        c.advance(37)
    req = frame.request_get_registers(SEVEN)
    assert a.handle(req) == b.handle(req)
    assert a.handle(req) != c.handle(req)


def test_calendar_matches_datetime():
    epoch = datetime.date(1970, 1, 1)
    for day in range(-800, 50000, 7):
        d = epoch + datetime.timedelta(days=day)
        assert vm.civil_from_days(day) == (d.year, d.month, d.day)
        assert vm.days_from_civil(d.year, d.month, d.day) == day


# -- what is left out, and silence ----------------------------------------------------------


def test_unknown_registers_are_omitted():
    meter = vm.VirtualMeter()
    got = ask(meter, [vm.E1, 0x1234, vm.T1, 0x0058])
    assert sorted(got) == [vm.E1, vm.T1]
    resp = meter.handle(frame.request_get_registers([0x1234]))
    assert resp.hex() == "403f10079a0d"  # the empty response (PROTOCOL.md 3.4)
    assert ask(meter, [0x1234]) == {}


def test_supported_subset_and_omit():
    meter = vm.VirtualMeter(supported=(vm.E1, vm.V1))
    assert sorted(ask(meter, SEVEN)) == [vm.E1, vm.V1]
    assert meter.truth(vm.T1) is None and meter.encoding(vm.T1) is None
    resp = meter.handle(frame.request_get_registers(SEVEN), omit=(vm.V1,))
    recs = messages.parse_registers(strict.decode_frame(resp).data)
    assert [r.rid for r in recs] == [vm.E1]
    with pytest.raises(ValueError):
        vm.VirtualMeter(supported=(vm.E1, 0x0058))


def _with_crc(body_hex):
    body = bytes.fromhex(body_hex)
    crc = frame.crc16(body)
    return bytes((0x80,)) + frame.stuff(body + bytes((crc >> 8, crc & 0xFF))) + b"\r"


@pytest.mark.parametrize(
    "wire",
    [
        bytes.fromhex("803f1001003cb25e0d"),  # bad CRC
        frame.request_get_registers([vm.E1], address=0x7F),  # logger top module address
        frame.encode_frame(0x3F, 0x09, bytes.fromhex("0001144a00027715")),  # SetClock
        frame.encode_frame(0x3F, 0x11, b"\x00\x00\x00\x3c"),  # PutRegister
        frame.encode_frame(0x3F, 0x55),  # unknown CID
        frame.encode_frame(0x3F, 0x01, b"\x00"),  # GetType with data
        frame.encode_frame(0x3F, 0x02, b"\x01"),  # GetSerialNo with data
        _with_crc("3f1000"),  # GetRegister, count 0
        _with_crc("3f1009" + "003c" * 9),  # count 9
        _with_crc("3f1002003c"),  # count 2, one RID
        frame.encode_frame(0x3F, 0x10, bytes.fromhex("01003c"), frame.START_FROM_METER),
        bytes.fromhex("803f10010d"),  # truncated
        b"\x06",
        b"",
        bytes.fromhex("803f1001003cb25f"),  # no stop byte
    ],
)
def test_silence_like_a_meter(wire):
    meter = vm.VirtualMeter()
    assert meter.handle(wire) is None
    assert meter.ignored == 1 and meter.answered == 0 and meter.requests == 1


def test_answers_after_silence():
    meter = vm.VirtualMeter()
    assert meter.handle(bytes.fromhex("803f1001003cb25e0d")) is None
    assert meter.handle(bytes.fromhex("803f1001003cb25f0d")) is not None
    assert meter.last_rids == [vm.E1] and meter.answered == 1


def test_other_address():
    meter = vm.VirtualMeter(address=0x7F)
    assert meter.handle(frame.request_get_type()) is None
    assert ask(meter, [vm.E1], address=0x7F)[vm.E1].text() == "1234.567"


# -- wire encodings ---------------------------------------------------------------------------


# (unit, NoB, SiEx) per register, as documented for the virtual MULTICAL 403.
WIRE_FORMATS = {
    vm.E1: (8, 4, 0x43),  # GJ, 0.001
    vm.E3: (8, 4, 0x43),
    vm.V1: (40, 4, 0x42),  # m3, 0.01
    vm.FLOW: (41, 2, 0x00),  # l/h
    vm.POWER: (22, 2, 0x41),  # kW, 0.1
    vm.T1: (37, 2, 0x42),  # degC, 0.01
    vm.T2: (37, 2, 0x42),
    vm.TDIFF: (38, 2, 0x42),  # K, 0.01
    vm.E8: (43, 4, 0x00),  # m3 x degC
    vm.E9: (43, 4, 0x00),
    vm.INFO: (0, 2, 0x00),
    vm.INFO_EVENTS: (0, 1, 0x00),
    vm.MAX_FLOW_Y: (41, 2, 0x00),
    vm.MAX_POWER_M: (22, 2, 0x41),
    vm.MIN_FLOW_M_DATE: (48, 4, 0x00),
    vm.AVG_T2_Y: (37, 2, 0x42),
    vm.E1_HIGH_RES: (1, 4, 0x00),  # Wh
    vm.SERIAL_NO: (0x33, 4, 0x00),
    vm.CLOCK: (47, 4, 0x00),
    vm.DATE: (48, 4, 0x00),
    vm.HOURS: (46, 4, 0x00),
}


def test_wire_formats():
    got = ask_all(vm.VirtualMeter(seed=2))
    for rid, fmt in WIRE_FORMATS.items():
        assert (got[rid].unit, got[rid].nob, got[rid].siex) == fmt, hex(rid)


def test_nob_one_two_and_four_mixed():
    got = ask_all(vm.VirtualMeter())
    nobs = {reg.nob for reg in got.values()}
    assert nobs == {1, 2, 4}
    assert got[vm.T1].nob == 2 and got[vm.T1].siex == 0x42
    assert got[vm.E1].nob == 4 and got[vm.E1].siex == 0x43
    assert got[vm.POWER].siex == 0x41 and got[vm.INFO_EVENTS].nob == 1


def _needs_stuffing(wire):
    return any(b == 0x1B for b in wire[1:-1])


def test_stuffing_in_defaults():
    meter = vm.VirtualMeter()
    assert _needs_stuffing(meter.handle(frame.request_get_type()))  # SW revision 0x0B06
    resp = meter.handle(frame.request_get_registers([vm.INFO_EVENTS]))  # 13 = 0x0D
    assert _needs_stuffing(resp) and ask(meter, [vm.INFO_EVENTS])[vm.INFO_EVENTS].mantissa == 13
    resp = meter.handle(frame.request_get_registers([vm.MAX_POWER_Y]))  # RID 0x0080
    assert bytes.fromhex("1b7f") in resp


def test_stuffed_crc_occurs_naturally():
    meter = vm.VirtualMeter(seed=1)
    req = frame.request_get_registers(SEVEN)
    hits = 0
    for _ in range(300):
        meter.advance(5)
        resp = meter.handle(req)
        f = strict.decode_frame(resp)
        crc = frame.crc16(bytes((f.address, f.cid)) + f.data)
        if frame.is_reserved(crc >> 8) or frame.is_reserved(crc & 0xFF):
            hits += 1
            assert resp.endswith(frame.stuff(bytes((crc >> 8, crc & 0xFF))) + b"\r")
    assert hits > 0


def test_wire_time():
    assert vm.wire_time_ms(15) == 138  # 137.5 ms rounded up
    assert vm.wire_time_ms(1) == 10
    assert vm.wire_time_ms(0) == 0
    assert vm.wire_time_ms(12, baud=2400) == 55
    assert vm.wire_time_ms(12, bits_per_byte=10) == 100


def test_prng_is_fixed():
    # The same constants are checked under MicroPython (host_tests/mpy/test_virtual_meter.py).
    r = vm.XorShift32(1)
    assert [r.next() for _ in range(3)] == [1761036849, 3079960521, 348398751]
    assert vm.XorShift32(0).next() != 0
    assert {vm.XorShift32(s).randint(3, 5) for s in range(100)} == {3, 4, 5}


# -- the optical line -------------------------------------------------------------------------


def test_line_plain_response_and_latency():
    line = vm.FaultyLine(vm.VirtualMeter(), latency_ms=(40, 150))
    req = frame.request_get_registers(SEVEN)
    delays = set()
    for _ in range(200):
        out = line.on_request(req)
        assert len(out) == 1
        delay, resp = out[0]
        assert 40 <= delay <= 150
        delays.add(delay)
        strict.decode_frame(resp, frame.START_FROM_METER)
    assert len(delays) > 20
    assert line.requests == line.responses == 200 and line.corrupted == 0
    assert line.bytes_in == 200 * len(req)


def test_line_echo_first_then_response():
    line = vm.FaultyLine(vm.VirtualMeter(), echo=True, latency_ms=(0, 0))
    req = frame.request_get_serial()
    out = line.on_request(req)
    assert out[0] == (0, req)
    assert out[1][1] == bytes.fromhex("403f0203ff20853d780d")
    assert [k for _, k, _ in line.events(req)] == ["echo", "response"]
    assert line.bytes_out == 2 * (len(req) + 10)


def test_line_asleep_only_echoes_and_wakes_at_run_time():
    meter = vm.VirtualMeter()
    line = vm.FaultyLine(meter, asleep=True, stray_zeros=1.0)
    req = frame.request_get_type()
    assert line.on_request(req) == []
    line.echo = True
    assert line.on_request(req) == [(0, req)]
    assert meter.requests == 0  # the meter never saw them
    line.asleep = False
    assert len(line.on_request(req)) == 4  # echo, 0x00, response, 0x00
    assert line.requests == 3 and line.responses == 1


def test_line_stray_zeros_around_the_response():
    line = vm.FaultyLine(vm.VirtualMeter(), stray_zeros=1.0, latency_ms=(50, 60))
    events = line.events(frame.request_get_type())
    assert [k for _, k, _ in events] == ["zero", "response", "zero"]
    (d0, _, z0), (d1, _, resp), (d2, _, z2) = events
    assert z0 == z2 == b"\x00"
    assert d0 < d1 and d2 > d1 + vm.wire_time_ms(len(resp))
    line.stray_zeros = 0.25
    zeros = sum(
        k == "zero" for _ in range(1000) for _, k, _ in line.events(frame.request_get_type())
    )
    assert 400 <= zeros <= 600  # about 2 x 0.25 x 1000
    line.stray_zeros = 0.0
    assert all(len(line.on_request(frame.request_get_type())) == 1 for _ in range(100))


def _assemble(stream):
    """What a master's assembler makes of received bytes: payload, or None if no good frame."""
    asm = frame.FrameAssembler()
    asm.expect(0x3F)
    try:
        asm.feed(stream)
    except KmpError:
        return None
    return bytes(asm.payload()) if asm.done and not asm.ack else None


def test_line_corruption_rate_kinds_and_detection():
    meter = vm.VirtualMeter(seed=8)
    line = vm.FaultyLine(meter, seed=8, corrupt_rate=0.3, latency_ms=(0, 0))
    req = frame.request_get_registers(SEVEN)
    kinds = set()
    for _ in range(1000):
        meter.advance(5)
        good = meter.handle(req)
        ((_, resp),) = line.on_request(req)
        if line.last_fault is None:
            assert resp == good
        else:
            kinds.add(line.last_fault)
            assert resp != good
            # Never a valid frame with the original payload: the master must notice.
            assert _assemble(resp) != strict.decode_frame(good).data
    assert 250 <= line.corrupted <= 350
    assert kinds == set(vm.CORRUPTIONS)
    assert sum(line.faults.values()) == line.corrupted


def test_bad_crc_fault_is_well_framed():
    line = vm.FaultyLine(vm.VirtualMeter(), seed=3, corrupt_rate=1.0)
    for _ in range(200):
        ((_, resp),) = line.on_request(frame.request_get_type())
        if line.last_fault == "crc":
            with pytest.raises(frame.CrcError):
                strict.decode_frame(resp)
            return
    pytest.fail("no bad-CRC fault in 200 corrupted responses")


def test_line_is_deterministic_by_seed():
    def run(seed):
        meter = vm.VirtualMeter(seed=seed)
        line = vm.FaultyLine(meter, seed=seed, echo=True, stray_zeros=0.3, corrupt_rate=0.3)
        out = []
        for i in range(50):
            meter.advance(i)
            out.append(line.on_request(frame.request_get_registers(SEVEN)))
        return out

    assert run(6) == run(6)
    assert run(6) != run(7)


def test_line_omits_registers():
    line = vm.FaultyLine(vm.VirtualMeter(), omit=(vm.T2, vm.TDIFF), latency_ms=(0, 0))
    ((_, resp),) = line.on_request(frame.request_get_registers(SEVEN))
    rids = [r.rid for r in messages.parse_registers(strict.decode_frame(resp).data)]
    assert rids == [vm.E1, vm.POWER, vm.T1, vm.FLOW, vm.V1]


def test_meter_link_reads_through_the_line():
    # The real link code (echo-safe, paced fake UART) against the virtual meter and its line.
    clock = FakeClock()
    meter = vm.VirtualMeter(seed=12)
    line = vm.FaultyLine(meter, seed=12, echo=True, stray_zeros=0.5)
    uart = FakeUart(clock, line, byte_ms=9.17)
    link = MeterLink(uart, clock=clock)
    rids = list(ALL[:12])
    res = link.read(rids)
    assert res.error is None and res.missing == [] and sorted(res.values) == sorted(rids)
    for rid, reg in res.values.items():
        assert (reg.unit, reg.mantissa, reg.exponent) == meter.truth(rid)
    assert link.get_serial() == 67051653
    line.asleep = True
    res = link.read(SEVEN)
    assert res.no_answer and not res.values


# -- request splitter -------------------------------------------------------------------------


def test_splitter_cuts_frames_from_garbage():
    s = vm.RequestSplitter()
    a = frame.request_get_type()
    b = frame.request_get_registers([0x80, 0x3C])  # RID 0x0080 travels stuffed
    bad = bytes.fromhex("803f1001003cb25e0d")
    stream = b"\x00\x11" + a + b"\x80\x3f\x10" + b[:4]
    assert s.feed(stream) == [a]
    assert s.feed(b[4:] + bad) == [b, bad]  # a restarted frame, then a bad one (passed on)
    assert s.dropped == 2 + 3
    assert s.feed(b"\x80" + b"\x01" * 300) == [] and s.feed(a) == [a]


def test_value_text_matches_codec_format():
    meter = vm.VirtualMeter()
    for rid in ALL:
        unit, m, e = meter.truth(rid)
        assert meter.truth_text(rid) == format_decimal(m, e)
