# The virtual MULTICAL 403 core under real MicroPython 1.29: it imports, answers like a meter,
# and a seed gives the same values and faults as under CPython (constants computed with
# CPython 3.11 from tools/virtual_meter.py and pasted here).
#   MICROPYPATH=lib:tools:host_tests/mpy:host_tests/fakes node tools/mpwasm.mjs \
#       host_tests/mpy/test_virtual_meter.py

import sys

try:
    import virtual_meter as vm
except ImportError:  # run with a MICROPYPATH that lacks tools/: the cwd is the repository root
    sys.path.append("tools")
    import virtual_meter as vm

from fake_clock import FakeClock
from fake_uart import FakeUart
from kmp import frame, messages, strict
from kmp.link import MeterLink
from mptest import assert_raises, run

SEVEN = [vm.E1, vm.POWER, vm.T1, vm.T2, vm.TDIFF, vm.FLOW, vm.V1]

# CPython: VirtualMeter(seed=7), advance(3600), GetRegister SEVEN.
SEVEN_AFTER_1H = (
    "403f10003c0804430012d6d4005016024100bf00562502421c0500572502420fe200592602420c23004a2902"
    "0002130044280442000f1242fa2f0d"
)
TEXTS_AFTER_1H = {
    vm.E1: "1234.644",
    vm.V1: "9877.14",
    vm.T1: "71.73",
    vm.T2: "40.66",
    vm.TDIFF: "31.07",
    vm.FLOW: "531",
    vm.POWER: "19.1",
    vm.CLOCK: "73000",
    vm.DATE: "250115",
    vm.HOURS: "26790",
    vm.E1_HIGH_RES: "2956819",
    vm.E8: "671642",
    vm.E9: "375324",
    vm.AVG_T1_Y: "70.52",
    vm.MAX_FLOW_M: "731",
    vm.MIN_POWER_Y: "18.8",
}
# CPython: VirtualMeter(seed=9, start=(2025, 2, 28, 12, 0, 0)), advance(86400): a new month.
TEXTS_NEXT_MONTH = {
    vm.E1: "1237.102",
    vm.V1: "9896.08",
    vm.DATE: "250301",
    vm.CLOCK: "120000",
    vm.HOURS: "26813",
    vm.MAX_FLOW_M_DATE: "250301",
    vm.MIN_FLOW_M_DATE: "250301",
    vm.MAX_FLOW_Y_DATE: "250228",
    vm.MIN_FLOW_Y_DATE: "250301",
    vm.AVG_T2_M: "40.83",
    vm.AVG_T2_Y: "41.00",
    vm.MAX_POWER_Y: "46.5",
}
# CPython: VirtualMeter(seed=7, energy_unit=MWh) behind FaultyLine(seed=7, echo, zeros 0.5,
# corrupt 0.5); advance(i * 11) before request i, GetRegister E1, power, T1.
_ECHO = "803f1003003c005000566a580d"
LINE_EVENTS = [
    [(0, "echo", _ECHO), (134, "zero", "00"),
     (135, "response", "403f10003c03044300053b97005016024100d90056e02502421ac2de660d")],
    [(0, "echo", _ECHO), (15, "zero", "00"),
     (50, "response", "403f10003c03044300053b97005016024100dc00562502421ac927b30d"),
     (337, "zero", "00")],
    [(0, "echo", _ECHO),
     (134, "response", "403f10003c030400053b97005016024100d800562502421aaf24be0d"),
     (424, "zero", "00")],
    [(0, "echo", _ECHO), (20, "zero", "00"),
     (129, "response", "403f10003c03044300253b97005016024100d900562502421ab3b0d00d"),
     (411, "zero", "00")],
    [(0, "echo", _ECHO), (63, "zero", "00"),
     (78, "response", "403f10003c03044300053b97005016024100d35400562502421a98b4a50d"),
     (375, "zero", "00")],
    [(0, "echo", _ECHO),
     (92, "response", "403f10003c03044300053b98005016024100cf00562502421aaf81c00d")],
]  # fmt: skip


def _hex(b):
    return "".join("%02x" % x for x in b)


def test_prng_matches_cpython():
    r = vm.XorShift32(1)
    assert [r.next() for _ in range(3)] == [1761036849, 3079960521, 348398751]
    r = vm.XorShift32(12345)
    assert [r.next() for _ in range(3)] == [1733338283, 192566377, 2132657874]


def test_get_type_and_serial():
    meter = vm.VirtualMeter()
    assert _hex(meter.handle(frame.request_get_type())) == "403f0104030b1bf96f430d"
    f = strict.decode_frame(meter.handle(frame.request_get_type()), frame.START_FROM_METER)
    assert messages.parse_type(f.data) == (0x0403, "K6")
    resp = meter.handle(frame.request_get_serial())
    assert _hex(resp) == "403f0203ff20853d780d"
    assert messages.parse_serial(strict.decode_frame(resp).data) == 67051653


def test_get_register_same_as_cpython():
    meter = vm.VirtualMeter(seed=7)
    meter.advance(3600)
    resp = meter.handle(frame.request_get_registers(SEVEN))
    assert _hex(resp) == SEVEN_AFTER_1H
    for reg in messages.parse_registers(strict.decode_frame(resp).data):
        assert (reg.unit, reg.mantissa, reg.exponent) == meter.truth(reg.rid)
    for rid in TEXTS_AFTER_1H:
        assert meter.truth_text(rid) == TEXTS_AFTER_1H[rid], hex(rid)


def test_next_month_same_as_cpython():
    meter = vm.VirtualMeter(seed=9, start=(2025, 2, 28, 12, 0, 0))
    meter.advance(86400)
    for rid in TEXTS_NEXT_MONTH:
        assert meter.truth_text(rid) == TEXTS_NEXT_MONTH[rid], hex(rid)


def test_float_seconds():
    a, b = vm.VirtualMeter(seed=7), vm.VirtualMeter(seed=7)
    a.advance(2.5)
    a.advance(3597.5)
    b.advance_ms(3600000)
    req = frame.request_get_registers(SEVEN)
    assert a.handle(req) == b.handle(req)
    assert_raises(ValueError, a.advance_ms, -1)


def test_omitted_and_silence():
    meter = vm.VirtualMeter()
    resp = meter.handle(frame.request_get_registers([vm.E1, 0x1234, vm.INFO_EVENTS]))
    regs = messages.parse_registers(strict.decode_frame(resp).data)
    assert [r.rid for r in regs] == [vm.E1, vm.INFO_EVENTS]
    assert [r.nob for r in regs] == [4, 1]
    assert _hex(meter.handle(frame.request_get_registers([0x1234]))) == "403f10079a0d"
    assert meter.handle(bytes([0x80, 0x3F, 0x10, 0x01, 0x00, 0x3C, 0xB2, 0x5E, 0x0D])) is None
    assert meter.handle(frame.request_get_registers([vm.E1], address=0x7F)) is None
    assert meter.handle(frame.encode_frame(0x3F, 0x09, b"\x00\x01\x14\x4a")) is None
    assert meter.ignored == 3


def test_line_same_as_cpython():
    meter = vm.VirtualMeter(seed=7, energy_unit=vm.ENERGY_MWH)
    line = vm.FaultyLine(meter, seed=7, echo=True, stray_zeros=0.5, corrupt_rate=0.5)
    req = frame.request_get_registers(SEVEN[:3])
    for i in range(6):
        meter.advance(i * 11)
        got = [(d, k, _hex(b)) for d, k, b in line.events(req)]
        assert got == LINE_EVENTS[i], i
    assert line.corrupted == 4 and line.bytes_out == 261
    assert line.faults["insert"] == 2 and line.faults["crc"] == 0


def test_line_is_a_fake_uart_responder():
    clock = FakeClock()
    meter = vm.VirtualMeter(seed=3)
    line = vm.FaultyLine(meter, seed=3, echo=True, stray_zeros=0.3)
    link = MeterLink(FakeUart(clock, line, byte_ms=9.17), clock=clock)
    res = link.read(SEVEN + [vm.INFO_EVENTS, vm.HOURS])
    assert res.error is None and len(res.values) == 9
    for rid in res.values:
        reg = res.values[rid]
        assert (reg.unit, reg.mantissa, reg.exponent) == meter.truth(rid)
    line.asleep = True
    assert link.read([vm.E1]).no_answer


def test_splitter():
    s = vm.RequestSplitter()
    a = frame.request_get_type()
    assert s.feed(b"\x00" + a + a[:3]) == [a]
    assert s.feed(a[3:]) == [a] and s.dropped == 1


run(globals(), "virtual_meter")
