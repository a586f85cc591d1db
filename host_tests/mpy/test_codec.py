# The KMP codec under real MicroPython 1.29: every public function of lib/kmp and exactjson,
# and all 68 golden vectors.

import gc

import kmp_vectors
from exactjson import Number, dumps
from kmp import frame, logger, messages, registers, strict, units, value
from kmp.errors import AddressError, CidError, CrcError, FrameError, LengthError, RequestError
from mptest import assert_raises, run


def _response(records, address=0x3F):
    payload = b"".join(messages.encode_register(*r) for r in records)
    return frame.encode_frame(address, frame.CID_GET_REGISTER, payload, frame.START_FROM_METER)


def test_golden_vectors():
    vectors = kmp_vectors.load()
    assert len(vectors) == 68
    failed = []
    for i, v in enumerate(vectors):
        try:
            kmp_vectors.check(v)
        except Exception as e:  # collect them all, then report
            failed.append((i, repr(e)))
    assert not failed, failed


def test_crc_and_stuffing():
    assert frame.crc16(b"123456789") == 0x31C3
    assert frame.crc16(b"\x3f\x10\x01\x00\x3c") == 0xB25F
    assert frame.is_reserved(0x40) and not frame.is_reserved(0x41)
    assert frame.stuff(b"\x04\x0d\x00\x06") == b"\x04\x1b\xf2\x00\x1b\xf9"
    assert strict.unstuff(b"\x04\x1b\xf2\x00\x1b\xf9") == b"\x04\x0d\x00\x06"
    assert_raises(FrameError, strict.unstuff, b"\x1b")
    assert_raises(FrameError, strict.unstuff, b"\x1b\x12")


def test_requests():
    assert frame.request_get_type() == b"\x80\x3f\x01\x05\x8a\x0d"
    assert frame.request_get_serial(0x3F) == b"\x80\x3f\x02\x35\xe9\x0d"
    assert frame.request_get_registers([0x80]) == b"\x80\x3f\x10\x01\x00\x1b\x7f\xd4\x08\x0d"
    assert_raises(RequestError, frame.request_get_registers, list(range(9)))
    assert_raises(RequestError, frame.request_get_registers, [])
    assert_raises(RequestError, frame.encode_frame, 256, 1)


def test_assembler_echo_noise_chunks():
    req = frame.request_get_registers([0x3C, 0x44])
    resp = _response([(0x3C, 8, 12345, -3), (0x44, 40, 123456789, -2)])
    stream = b"\x00" + req + b"\x00" + resp + b"\x00"
    asm = frame.FrameAssembler()
    for size in (1, 3, 7, 200):
        asm.expect(0x3F, 0x10)
        pos = 0
        while not asm.done:
            pos += asm.feed(memoryview(stream)[pos : pos + size])
        assert pos == len(stream) - 1
        regs = messages.parse_registers(asm.payload())
        assert [(r.rid, r.text()) for r in regs] == [(0x3C, "12.345"), (0x44, "1234567.89")]


def test_assembler_errors():
    asm = frame.FrameAssembler()
    asm.expect(0x3F, 0x10)
    assert_raises(AddressError, asm.feed, _response([(0x3C, 8, 1, 0)], address=0x7F))
    asm.expect(0x3F, 0x02)
    assert_raises(CidError, asm.feed, _response([(0x3C, 8, 1, 0)]))
    bad = bytearray(_response([(0x3C, 8, 1, 0)]))
    bad[-3] ^= 0x10
    asm.expect()
    assert_raises(CrcError, asm.feed, bad)
    assert_raises(LengthError, frame.FrameAssembler(max_body=8).feed, b"\x40" + b"\x01" * 20)
    assert_raises(FrameError, asm.feed, b"\x40\x3f\x1b\x0d")
    asm.reset()
    assert asm.feed(b"\x06") == 1 and asm.ack
    # a stray 0x06 before a data answer is skipped; SetClock/PutRegister take the lone ACK
    resp = _response([(0x3C, 8, 1, 0)])
    asm.expect(0x3F, 0x10)
    assert asm.feed(b"\x06" + resp) == len(resp) + 1 and asm.done and not asm.ack
    asm.expect(0x3F, 0x11)
    assert asm.feed(b"\x06") == 1 and asm.ack
    asm.expect(0x3F, 0x02, ack=True)
    assert asm.feed(b"\x06") == 1 and asm.ack


def test_assembler_feed_allocates_nothing():
    import micropython

    resp = _response([(0x3C, 8, 99999999, -3)] * 8)
    asm = frame.FrameAssembler()
    asm.expect(0x3F, 0x10)
    view = memoryview(resp)
    gc.collect()
    micropython.heap_lock()
    try:
        used = asm.feed(view)
        done = asm.done
    finally:
        micropython.heap_unlock()
    assert done and used == len(resp)


def test_decode_frame_strict():
    f = strict.decode_frame(b"\x40\x3f\x02\x01\x23\x45\x67\xe9\x56\x0d", frame.START_FROM_METER)
    assert (f.address, f.cid, messages.parse_serial(f.data)) == (0x3F, 2, 19088743)
    assert strict.decode_frame(b"\x06").ack
    assert_raises(FrameError, strict.decode_frame, b"\x80\x56\x0d", frame.START_FROM_METER)
    assert_raises(FrameError, strict.decode_frame, b"\x40\x56")
    assert_raises(FrameError, strict.decode_frame, b"\x3f\x12\x13\x11\x22")


def test_values_exact():
    assert value.decode_value(b"\x04\x43\x00\x00\x30\x39") == (12345, -3, 4, 6)
    assert value.format_decimal(12345, -3) == "12.345"
    assert value.format_decimal(-12345, -2) == "-123.45"
    assert value.format_decimal(123456789, 0) == "123456789"
    assert value.format_decimal(123456789, -3) == "123456.789"
    assert value.format_decimal(5, -3) == "0.005"
    assert value.format_decimal(255, 3) == "255000"
    assert value.parse_decimal("-0.005") == (-5, -3)
    assert value.encode_value(-12345, -2, 4) == b"\x04\xc2\x00\x00\x30\x39"
    assert value.encode_value(4314558500, 17) == b"\x05\x11\x01\x01\x2a\xf0\x24"
    assert value.siex_byte(-1, -2) == 0xC2
    assert value.min_nob(0) == 1 and value.min_nob(256) == 2
    assert value.integer_value(255, 3) == 255000 and value.integer_value(1, -1) is None
    assert_raises(LengthError, value.decode_value, b"\x00\xc2")
    assert_raises(LengthError, value.decode_value, b"\x05\xc2\x00\x00\x30\x39")
    assert_raises(ValueError, value.encode_value, 70000, 0, 2)
    assert_raises(ValueError, value.parse_decimal, "1.2.3")


def test_single_precision_would_lose_digits():
    # What the integer path protects us from: a 9-digit register through a float32.
    import struct

    as_float32 = struct.unpack("f", struct.pack("f", 123456789))[0]
    assert int(as_float32) != 123456789
    (reg,) = messages.parse_registers(messages.encode_register(0x3C, 2, 123456789, 0))
    assert reg.text() == "123456789"


def test_messages():
    payload = messages.encode_register(0x3EA, 47, 200243, 0) + messages.encode_register(
        0x3EB, 48, 60824, 0
    )
    clock, date = messages.parse_registers(payload)
    assert clock.clock() == (20, 2, 43) and date.date() == (2006, 8, 24)
    assert clock.unit_name() == "hh:mm:ss" and clock.siex == 0
    assert "Register(0x03EA" in repr(clock)
    assert messages.parse_register_request(b"\x02\x00\x3c\x00\x44") == [0x3C, 0x44]
    assert_raises(LengthError, messages.parse_register_request, b"\x02\x00\x3c")
    assert_raises(RequestError, messages.parse_register_request, b"\x09")
    assert messages.parse_type(b"\x00\x04\x06\x01") == (4, "F1")
    assert messages.sw_revision_text(0) is None and messages.sw_revision_text(0xFF01) == "0xFF01"
    assert messages.meter_type_name(0x0004) == "MULTICAL 601 (Pt100)"
    assert messages.meter_type_name(0x0403) == "KMP meter, type 0x0403"
    assert messages.meter_type_name(0x0901) == "MULTICAL 601 top module, type 0x0901"
    assert messages.parse_serial(b"\x00\x69\x2d\x32") == 6892850
    assert_raises(LengthError, messages.parse_registers, b"\x00\x3c\x08\x04")


def test_units_and_registers():
    assert units.unit_name(8) == "GJ" and units.unit_name(42) == "m³/h"
    assert units.unit_name(99) == "unit_99" and units.is_known(64)
    assert registers.by_key("temp_diff")[0] == 0x59
    assert registers.by_rid(0x010A)[1] == "heat_energy_high_res"
    assert registers.by_rid(0xFFFF) is None
    assert registers.parse_rid("0x3C") == 60 and registers.parse_rid("volume") == 0x44
    assert_raises(ValueError, registers.parse_rid, "bogus")


def test_logger():
    assert logger.parse_log_time(b"\x07\x05\x11\x0a\x1e\x00\x00\x00") == (2007, 5, 17, 10, 30, 0)
    assert_raises(LengthError, logger.parse_log_time, b"\x07")
    # one register, SiEx 0xC2 (negative, exponent -2), two records: the sign applies to both
    # log 1, 1 register, rec 10F3: RID 0056 unit 25 NoB 02 SiEx C2 0096; rec 10F4: 00FA; trailer
    data = bytes.fromhex("010110f300562502c2009610f400fa10f5110200")
    log = logger.parse_log_response(data)
    assert log["formats"] == {0x56: (0x25, 2, 0xC2)}
    assert log["records"] == [(0x10F3, [-150]), (0x10F4, [-250])]


def test_exactjson():
    import json

    text = dumps({"e": Number("12.345"), "n": None, "l": [1, True, "x"]}, compact=True)
    assert '"e":12.345' in text and " " not in text  # the exact text, not a float's
    assert json.loads(text) == {"e": 12.345, "n": None, "l": [1, True, "x"]}
    assert dumps({"a": 1}) == '{"a": 1}'


run(globals(), "codec")
