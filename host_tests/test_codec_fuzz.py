# Fuzzing: random and mutated frames raise only the codec's own errors, and a mutated frame is
# never accepted with different values. Seeded, so every run checks the same cases.

import random

from hypothesis import given
from hypothesis import strategies as st

from kmp import frame, messages, strict
from kmp.errors import KmpError

SEED = 20261123


def _decode_all(stream):
    """Feed a stream to an assembler, parsing every completed frame; return the parsed frames."""
    asm = frame.FrameAssembler()
    out = []
    pos = 0
    while pos < len(stream):
        try:
            used = asm.feed(memoryview(stream)[pos:])
        except KmpError:
            asm.reset()
            pos += 1  # skip on: the link would wait for quiet and retry
            continue
        pos += used
        if asm.done:
            if not asm.ack:
                data = bytes(asm.payload())
                try:
                    out.append((asm.cid, [(r.rid, r.unit, r.mantissa, r.exponent)
                                          for r in messages.parse_registers(data)]))  # fmt: skip
                except KmpError:
                    pass
            asm.reset()
        elif used == 0:
            break
    return out


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_codec_errors(data):
    _decode_all(data)
    try:
        strict.decode_frame(data)
    except KmpError:
        pass
    try:
        messages.parse_registers(data)
    except KmpError:
        pass


def _sample_frame(rng):
    records = []
    for rid in rng.sample([0x3C, 0x44, 0x4A, 0x50, 0x56, 0x57, 0x59, 0x3EC], rng.randint(1, 8)):
        m = rng.randint(0, 2**32 - 1) * rng.choice((1, -1))
        records.append((rid, rng.choice((8, 3, 40, 41, 37, 38, 22)), m, rng.randint(-5, 3)))
    payload = b"".join(messages.encode_register(*r) for r in records)
    return records, frame.encode_frame(0x3F, 0x10, payload, frame.START_FROM_METER)


def _mutate(rng, wire):
    w = bytearray(wire)
    kind = rng.randrange(4)
    i = rng.randrange(len(w))
    if kind == 0:
        w[i] ^= 1 << rng.randrange(8)  # bit flip
    elif kind == 1:
        w[i] = rng.randrange(256)  # byte replaced
    elif kind == 2:
        del w[i]  # byte dropped
    else:
        w.insert(i, rng.randrange(256))  # byte inserted
    return bytes(w)


def test_mutated_frames_never_accepted_with_other_values():
    rng = random.Random(SEED)
    accepted_changed = 0
    rejected = 0
    for _ in range(20000):
        records, wire = _sample_frame(rng)
        bad = _mutate(rng, wire)
        if bad == wire:
            continue
        got = _decode_all(bad)
        if not got:
            rejected += 1
        for cid, regs in got:
            if cid == 0x10 and regs != [tuple(r) for r in records]:
                accepted_changed += 1
    assert accepted_changed == 0
    assert rejected > 19000  # nearly every mutation is caught outright


def test_mutated_frames_raise_only_codec_errors_in_strict_decode():
    rng = random.Random(SEED + 1)
    for _ in range(5000):
        _, wire = _sample_frame(rng)
        bad = _mutate(rng, wire)
        try:
            f = strict.decode_frame(bad)
            messages.parse_registers(f.data)
        except KmpError:
            pass
