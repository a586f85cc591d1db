# Property tests (hypothesis): round trips of stuffing, frames, values and register sets, and the
# CRC residue.

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from kmp import frame, messages, strict
from kmp.value import decode_value, encode_value, format_decimal, parse_decimal

mantissas = st.integers(min_value=-(2**32 - 1), max_value=2**32 - 1)
exponents = st.integers(min_value=-63, max_value=63)
small_exponents = st.integers(min_value=-9, max_value=9)


@st.composite
def register_sets(draw):
    rids = draw(st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=8, unique=True))
    out = []
    for rid in rids:
        m = draw(mantissas)
        e = draw(exponents)
        need = max(1, ((-m if m < 0 else m).bit_length() + 7) // 8)
        nob = draw(st.integers(need, 8))
        out.append((rid, draw(st.integers(0, 255)), m, e, nob))
    return out


@given(st.binary(max_size=200))
def test_stuffing_round_trips(data):
    stuffed = frame.stuff(data)
    assert strict.unstuff(stuffed) == data
    assert not any(
        frame.is_reserved(b)
        for i, b in enumerate(stuffed)
        if b != 0x1B and (i == 0 or stuffed[i - 1] != 0x1B)
    )


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=100))
def test_crc_residue_is_zero(address, cid, data):
    body = bytes((address, cid)) + data
    crc = frame.crc16(body)
    assert frame.crc16(body + bytes((crc >> 8, crc & 0xFF))) == 0


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=100),
       st.sampled_from([frame.START_FROM_METER, frame.START_TO_METER]))  # fmt: skip
def test_frames_round_trip(address, cid, data, start):
    raw = frame.encode_frame(address, cid, data, start)
    f = strict.decode_frame(raw, start, address, cid)
    assert (f.address, f.cid, f.data) == (address, cid, data)


@given(mantissas, exponents)
def test_values_round_trip_exactly(m, e):
    raw = encode_value(m, e)
    got_m, got_e, nob, end = decode_value(raw)
    assert (got_m, got_e, end) == (m, e, len(raw))
    text = format_decimal(m, e)
    assert Decimal(text) == Decimal(m).scaleb(e)
    if e <= 0:
        assert parse_decimal(text) == (m, e)


@given(register_sets(), st.lists(st.integers(1, 20), min_size=1, max_size=40),
       st.booleans(), st.integers(0, 3))  # fmt: skip
def test_register_sets_round_trip_through_the_assembler(records, chunks, echo, zeros):
    payload = b"".join(messages.encode_register(*r) for r in records)
    wire = frame.encode_frame(0x3F, 0x10, payload, frame.START_FROM_METER)
    request = frame.request_get_registers([r[0] for r in records] or [0x3C])
    stream = (request if echo else b"") + b"\x00" * zeros + wire
    asm = frame.FrameAssembler()
    asm.expect(0x3F, 0x10)
    pos = 0
    k = 0
    while not asm.done:
        assert pos < len(stream), "stream ended before the frame"
        size = chunks[k % len(chunks)]
        pos += asm.feed(memoryview(stream)[pos : pos + size])
        k += 1
    assert pos == len(stream)
    got = messages.parse_registers(asm.payload())
    assert [(r.rid, r.unit, r.mantissa, r.exponent, r.nob) for r in got] == records
