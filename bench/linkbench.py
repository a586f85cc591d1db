# Optical-link benchmark: bytes on the wire, requests and link time for kmp2mqtt's batched reads
# versus the one-register-per-request approach of ESPHome's kamstrup_kmp, both against the same
# virtual MULTICAL (1200 baud 8N2 pacing, the simulator's 40-150 ms response latency model).

from fake_clock import FakeClock
from fake_uart import FakeUart
from kmp import frame, messages
from kmp.link import MeterLink
from virtual_meter import DEFAULT_REGISTERS, FaultyLine, VirtualMeter

BYTE_MS = 11000 / 1200
SEVEN = [0x3C, 0x50, 0x56, 0x57, 0x59, 0x4A, 0x44]
SIZES = (1, 8, 16, 24)


def _setup(seed):
    clock = FakeClock()
    meter = VirtualMeter(seed=seed)
    line = FaultyLine(meter, seed=seed)
    uart = FakeUart(clock, line, byte_ms=BYTE_MS)
    return clock, meter, MeterLink(uart, clock=clock)


def physical_minimum(meter, rids):
    """Bytes each way of the fewest frames that can carry these registers (stuffing included):
    ceil(N/8) requests and their responses, frame overhead only."""
    tx = rx = 0
    for i in range(0, len(rids), 8):
        chunk = rids[i : i + 8]
        tx += len(frame.request_get_registers(chunk))
        payload = b""
        for r in chunk:
            unit, mantissa, exponent = meter.truth(r)
            nob = meter.encoding(r)[1]  # the meter's own value width
            payload += messages.encode_register(r, unit, mantissa, exponent, nob)
        rx += len(frame.encode_frame(0x3F, 0x10, payload, frame.START_FROM_METER))
    return tx, rx


def measure(rids, batched, seed=1, rounds=5):
    """Average over rounds of one full read: requests, bytes tx/rx, link time (ms)."""
    totals = [0, 0, 0, 0]
    minimum = None
    for k in range(rounds):
        clock, meter, link = _setup(seed + k)
        t0 = clock.now
        if batched:
            res = link.read(rids)
            assert len(res.values) == len(rids), res.missing
        else:
            for rid in rids:  # ESPHome: one command per loop(), one register per request
                assert len(link.read([rid]).values) == 1
        totals[0] += link.requests
        totals[1] += link.bytes_tx
        totals[2] += link.bytes_rx
        totals[3] += clock.now - t0
        if minimum is None:
            minimum = physical_minimum(meter, rids)
    return {
        "requests": totals[0] / rounds,
        "bytes_tx": totals[1] / rounds,
        "bytes_rx": totals[2] / rounds,
        "time_ms": totals[3] / rounds,
        "min_tx": minimum[0],
        "min_rx": minimum[1],
    }


def register_sets():
    others = [r for r in sorted(DEFAULT_REGISTERS) if r not in SEVEN]
    sets = [("seven ESPHome sensors", SEVEN)]
    for n in SIZES:
        sets.append(("%d register%s" % (n, "" if n == 1 else "s"), (SEVEN + others)[:n]))
    return sets


def run():
    rows = []
    for label, rids in register_sets():
        ours = measure(rids, True)
        base = measure(rids, False)
        rows.append((label, len(rids), ours, base))
    return rows
