# Behaviour of the KMP codec beyond the golden vectors: requests, the streaming assembler with
# echo and noise, exact values, register matching by id, errors with clear messages.

import pytest

from kmp import frame, logger, messages, registers, strict, units
from kmp.errors import (
    AddressError,
    CidError,
    CrcError,
    FrameError,
    KmpError,
    LengthError,
    RequestError,
)
from kmp.value import decode_value, encode_value, format_decimal, parse_decimal

ESPHOME = {
    "heat_energy": 0x3C,
    "power": 0x50,
    "temp1": 0x56,
    "temp2": 0x57,
    "temp_diff": 0x59,
    "flow": 0x4A,
    "volume": 0x44,
}


def response(records, address=0x3F, cid=frame.CID_GET_REGISTER):
    payload = b"".join(messages.encode_register(*r) for r in records)
    return frame.encode_frame(address, cid, payload, frame.START_FROM_METER)


def test_request_frames_match_known_captures():
    assert frame.request_get_type() == bytes.fromhex("803f01058a0d")
    assert frame.request_get_serial() == bytes.fromhex("803f0235e90d")
    assert frame.request_get_registers([0x3C]) == bytes.fromhex("803f1001003cb25f0d")
    assert frame.request_get_registers([0x80]) == bytes.fromhex("803f1001001b7fd4080d")
    assert frame.request_get_registers([1002], address=0x3F) == bytes.fromhex("803f100103ea4cb70d")


def test_request_to_other_address():
    f = strict.decode_frame(frame.request_get_serial(0x7F))
    assert (f.address, f.cid, f.start) == (0x7F, 2, frame.START_TO_METER)


@pytest.mark.parametrize("rids", [[], list(range(9)), [0x10000], [-1], ["60"]])
def test_request_rejects_bad_register_lists(rids):
    with pytest.raises(RequestError):
        frame.request_get_registers(rids)


def test_nine_registers_message_names_the_limit():
    with pytest.raises(RequestError, match="1 to 8 register ids, got 9"):
        frame.request_get_registers(list(range(9)))


@pytest.mark.parametrize("cid", [-1, 256, 0x1FF, "16"])
def test_encode_frame_rejects_a_cid_outside_a_byte(cid):
    with pytest.raises(RequestError, match="CID: expected 0..255"):
        frame.encode_frame(0x3F, cid)


@pytest.mark.parametrize(
    "cid, name", [(frame.CID_GET_TYPE, "GetType"), (frame.CID_GET_SERIAL, "GetSerialNo")]
)
def test_get_type_and_serial_requests_carry_no_data(cid, name):
    # KMP 6.2.1/6.2.2: the request is the CID alone; a request with bytes after it is refused.
    import kmptool

    wire = frame.encode_frame(0x3F, cid, b"foo")
    with pytest.raises(RequestError, match=name + " request: expected no data bytes, got 3"):
        kmptool.decode(wire)
    with pytest.raises(RequestError, match="expected no data bytes"):
        kmptool.decode(bytes((cid,)) + b"foo", "application", request=True)
    assert kmptool.decode(frame.encode_frame(0x3F, cid)) == {
        "address": 0x3F,
        "cid": cid,
        "request": True,
    }


def test_assembler_skips_echo_and_stray_zeros():
    req = frame.request_get_registers([0x3C])
    resp = response([(0x3C, 8, 12345, -3)])
    stream = b"\x00" + req + b"\x00\x00" + resp
    asm = frame.FrameAssembler()
    asm.expect(0x3F, 0x10)
    used = asm.feed(stream)
    assert asm.done and used == len(stream)
    (reg,) = messages.parse_registers(asm.payload())
    assert (reg.rid, reg.unit_name(), reg.text()) == (0x3C, "GJ", "12.345")


def test_assembler_byte_at_a_time_and_leftover_bytes():
    resp = response([(0x56, 0x25, 6344, -2, 2)])
    asm = frame.FrameAssembler()
    for i, b in enumerate(resp + b"\x00\x00"):
        used = asm.feed(bytes((b,)))
        if asm.done:
            assert i == len(resp) - 1 and used == 1
            break
    assert asm.feed(b"\x00") == 0  # nothing more is taken once a frame is complete
    assert messages.parse_registers(asm.payload())[0].text() == "63.44"


def test_assembler_reports_ack():
    asm = frame.FrameAssembler()
    assert asm.feed(b"\x00\x06\x40") == 2
    assert asm.done and asm.ack


def test_assembler_ignores_a_stray_ack_when_a_data_answer_is_expected():
    # Only SetClock and PutRegister are ACKed (PROTOCOL.md 1.2, 3.1): a 0x06 before the start of
    # a GetRegister/GetType/GetSerialNo answer is noise, and the answer after it is kept.
    resp = response([(0x3C, 8, 12345, -3)])
    kind = frame.encode_frame(0x3F, 1, b"\x00\x04\x06\x01", frame.START_FROM_METER)
    serial = frame.encode_frame(0x3F, 2, b"\x01\x23\x45\x67", frame.START_FROM_METER)
    asm = frame.FrameAssembler()
    for cid, wire in ((0x10, resp), (0x01, kind), (0x02, serial)):
        asm.expect(0x3F, cid)
        stream = b"\x06\x00\x06" + wire
        assert asm.feed(stream) == len(stream)
        assert asm.done and not asm.ack and asm.cid == cid
    asm.expect(0x3F, 0x10, ack=True)  # the caller may still ask for a lone ACK explicitly
    assert asm.feed(b"\x06" + resp) == 1 and asm.ack
    for cid in (0x09, 0x11, None):  # SetClock, PutRegister, anything: a lone ACK answers
        asm.expect(0x3F, cid)
        assert asm.feed(b"\x00\x06") == 2 and asm.done and asm.ack
    asm.expect(0x3F, 0x11, ack=False)
    assert asm.feed(b"\x06") == 1 and not asm.done


def test_assembler_restarts_on_new_start_byte():
    good = response([(0x3C, 8, 1, 0)])
    asm = frame.FrameAssembler()
    asm.feed(b"\x40\x3f\x10\x00" + good)
    assert asm.done and messages.parse_registers(asm.payload())[0].mantissa == 1


def test_assembler_rejects_wrong_address_and_cid():
    asm = frame.FrameAssembler()
    asm.expect(0x3F, 0x10)
    with pytest.raises(AddressError, match="address 0x7F, expected 0x3F"):
        asm.feed(response([(0x3C, 8, 1, 0)], address=0x7F))
    asm.expect(0x3F, 0x10)
    with pytest.raises(CidError, match="CID 0x02, expected 0x10"):
        asm.feed(frame.encode_frame(0x3F, 2, b"\x01\x02\x03\x04", frame.START_FROM_METER))


def test_assembler_rejects_bad_crc_and_recovers():
    good = bytearray(response([(0x3C, 8, 1, 0)]))
    bad = bytearray(good)
    bad[-2] ^= 0x01
    asm = frame.FrameAssembler()
    with pytest.raises(CrcError, match="CRC mismatch"):
        asm.feed(bad)
    assert asm.feed(good) == len(good) and asm.done


def test_assembler_bounds_frame_length():
    asm = frame.FrameAssembler(max_body=16)
    with pytest.raises(LengthError, match="longer than 16 bytes"):
        asm.feed(b"\x40" + b"\x01" * 40 + b"\x0d")
    assert not asm.in_frame


def test_assembler_rejects_unescaped_reserved_byte():
    with pytest.raises(FrameError, match="unescaped reserved byte 0x80"):
        frame.FrameAssembler().feed(b"\x40\x3f\x80\x0d")


def test_feeding_does_not_allocate_per_byte():
    # The buffer is preallocated: feeding a long stream keeps the same buffer object.
    asm = frame.FrameAssembler()
    buf_id = id(asm._buf)
    for _ in range(50):
        asm.expect(0x3F, 0x10)
        asm.feed(response([(0x3C, 8, 99999999, -3)] * 8))
    assert id(asm._buf) == buf_id


def test_registers_matched_by_id_not_position():
    # The meter omits registers it does not support and may answer in any order.
    payload = messages.encode_register(0x57, 0x25, 4012, -2) + messages.encode_register(
        0x3C, 8, 123456789, -3
    )
    got = {r.rid: r.text() for r in messages.parse_registers(payload)}
    assert got == {0x57: "40.12", 0x3C: "123456.789"}


def test_nine_digit_register_keeps_all_digits():
    (reg,) = messages.parse_registers(messages.encode_register(0x3C, 8, 123456789, -3))
    assert reg.text() == "123456.789"
    (reg,) = messages.parse_registers(messages.encode_register(0x3C, 2, 987654321, 0))
    assert reg.text() == "987654321"


@pytest.mark.parametrize(
    "mantissa, exponent, text",
    [
        (12345, -3, "12.345"),
        (-12345, -2, "-123.45"),
        (20000, -2, "200.00"),
        (5, -3, "0.005"),
        (-5, -3, "-0.005"),
        (0, -2, "0.00"),
        (0, 3, "0"),
        (255, 3, "255000"),
        (87654321, 3, "87654321000"),
        (1, -63, "0." + "0" * 62 + "1"),
    ],
)
def test_format_decimal_exact(mantissa, exponent, text):
    assert format_decimal(mantissa, exponent) == text
    assert parse_decimal(text) == (mantissa, exponent) or mantissa == 0 or exponent > 0


def test_value_decoding_negative_and_exponents():
    assert decode_value(bytes.fromhex("04c200003039")) == (-12345, -2, 4, 6)
    assert decode_value(bytes.fromhex("0103ff")) == (255, 3, 1, 3)
    assert encode_value(-12345, -2, 4) == bytes.fromhex("04c200003039")
    assert encode_value(255, 3) == bytes.fromhex("0103ff")


def test_value_errors_say_what_was_expected():
    with pytest.raises(LengthError, match="NoB 5 needs 5 byte"):
        decode_value(bytes.fromhex("05c200003039"))
    with pytest.raises(LengthError, match="NoB 0 out of range"):
        decode_value(bytes.fromhex("00c2"))


def test_clock_and_date_units():
    def reg(unit, n):
        return messages.Register(1, unit, 4, n, 0)

    assert reg(47, 200243).clock() == (20, 2, 43)
    assert reg(47, 246000).clock() is None
    assert reg(48, 60824).date() == (2006, 8, 24)
    assert reg(49, 20240229).date() == (2024, 2, 29)
    assert reg(50, 1231).date() == (12, 31)
    assert reg(48, 2294051).date() is None
    assert reg(8, 60824).date() is None


def test_get_type_and_serial():
    assert messages.parse_type(bytes.fromhex("00040601")) == (4, "F1")
    assert messages.parse_type(bytes.fromhex("00040000")) == (4, None)
    assert messages.parse_serial(bytes.fromhex("01234567")) == 19088743
    with pytest.raises(LengthError):
        messages.parse_serial(b"\x01\x02")
    assert messages.meter_type_name(4).startswith("MULTICAL 601")
    # a code no public source lists is shown as the code; modules by their high byte
    assert messages.meter_type_name(0x0403) == "KMP meter, type 0x0403"
    assert messages.meter_type_name(0x0A0B) == "KMP meter, type 0x0A0B"
    assert messages.meter_type_name(0x0901) == "MULTICAL 601 top module, type 0x0901"
    assert messages.meter_type_name(0x1602) == "MULTICAL 601 base module, type 0x1602"
    assert messages.meter_type_name(0x1505) == "MULTICAL 601 (Pt500, 4-wire) via 67-05"


def test_units_table():
    assert units.unit_name(8) == "GJ"
    assert units.unit_name(40) == "m³"
    assert units.unit_name(41) == "l/h"
    assert units.unit_name(22) == "kW"
    assert units.unit_name(64) == "datetime"
    assert units.unit_name(74) == "IPv6"
    assert units.unit_name(200) == "unit_200"
    assert not units.is_known(200)


def test_register_table_has_the_required_registers():
    for key, rid in ESPHOME.items():
        assert registers.by_key(key)[0] == rid
    for rid in (1001, 1002, 1003, 1004, 99, 63, 97, 110, 266, 0x7B, 0x82, 0x8A, 0x91, 146, 150):
        assert registers.by_rid(rid) is not None, rid
    assert registers.SENSOR_KEYS == tuple(ESPHOME)
    keys = [e[1] for e in registers.TABLE]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "text, rid", [("heat_energy", 60), ("60", 60), ("0x3C", 60), ("1002", 1002)]
)
def test_parse_rid(text, rid):
    assert registers.parse_rid(text) == rid


@pytest.mark.parametrize("text", ["nope", "0x10000", "-1"])
def test_parse_rid_rejects(text):
    with pytest.raises(ValueError):
        registers.parse_rid(text)


def test_every_error_is_a_kmp_error():
    for cls in (FrameError, CrcError, LengthError, AddressError, CidError, RequestError):
        assert issubclass(cls, KmpError)


def _log_response(regs, recs):
    """GetLog* payload: regs [(rid, unit, nob, siex)], recs [(rec_id, [raw value, ...])]."""
    out = bytearray((1, len(regs)))
    out += recs[0][0].to_bytes(2, "big")
    for (rid, unit, nob, siex), v in zip(regs, recs[0][1]):
        out += rid.to_bytes(2, "big") + bytes((unit, nob, siex)) + v.to_bytes(nob, "big")
    for rec_id, values in recs[1:]:
        out += rec_id.to_bytes(2, "big")
        for (_, _, nob, _), v in zip(regs, values):
            out += v.to_bytes(nob, "big")
    return bytes(out + b"\x10\xf5\x11\x02\x00")


def test_logger_keeps_siex_and_the_sign_of_every_record():
    # SiEx 0xC2: negative values, exponent -2 (PROTOCOL.md 3.5); 0x43: positive, exponent -3.
    data = _log_response(
        [(0x56, 37, 2, 0xC2), (0x3C, 8, 4, 0x43)],
        [(0x10F3, [150, 1000]), (0x10F4, [250, 2000]), (0x10F5, [0, 3000])],
    )
    log = logger.parse_log_response(data)
    assert log["formats"] == {0x56: (37, 2, 0xC2), 0x3C: (8, 4, 0x43)}
    assert log["records"] == [(0x10F3, [-150, 1000]), (0x10F4, [-250, 2000]), (0x10F5, [0, 3000])]
    assert log["rids"] == [0x56, 0x3C] and log["info"] == 0
