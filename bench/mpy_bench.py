# Memory and CPU of the node under MicroPython 1.29 (WASM), run by bench/bench.py through
# tools/mpwasm.mjs with the .mpy build first on the path (what the ESP32 loads). Prints one JSON
# line. Steps (MPWASM_STEPS): this port's GC frees garbage only at the top level, so heap levels
# are read between steps, after the runner's gc.collect(); allocation per cycle is read inside
# one step, where nothing is collected, as the growth of gc.mem_alloc().
#
# Also importable under CPython for the CPU comparison (cpu_bench).

import gc
import json
import sys
import time

GROWTH_CYCLES = 1000
PER_CYCLE_N = 20
CPU_ROUNDS = 200

try:
    ticks_us = time.ticks_us
    ticks_diff = time.ticks_diff
except AttributeError:  # CPython

    def ticks_us():
        return time.perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b


def cpu_bench(rounds):
    """Microseconds per frame decode (8-register response) and per state payload."""
    import payloads
    from kmp import frame, messages

    records = b"".join(
        messages.encode_register(rid, 8, 123456789, -3, 4)
        for rid in (0x3C, 0x44, 0x4A, 0x50, 0x56, 0x57, 0x59, 0x61)
    )
    wire = frame.encode_frame(0x3F, 0x10, records, frame.START_FROM_METER)
    asm = frame.FrameAssembler()
    t0 = ticks_us()
    for _ in range(rounds):
        asm.expect(0x3F, 0x10)
        asm.feed(wire)
        regs = messages.parse_registers(asm.payload())
    decode = ticks_diff(ticks_us(), t0) / rounds
    values = {}
    for key, reg in zip(("heat_energy", "volume", "flow", "power", "temp1", "temp2", "temp_diff"),
                        regs):  # fmt: skip
        values[key] = reg.text()
    t0 = ticks_us()
    for _ in range(rounds):
        payloads.state_payload(values, "2026-11-23T12:00:00Z")
    payload = ticks_diff(ticks_us(), t0) / rounds
    return {"decode_us": decode, "payload_us": payload}


# What a mains node keeps loaded while it runs (config, discovery, ha and the flash buffer are
# dropped once used; board.py is the ESP32 wiring, imported here over fake machine/network).
RESIDENT = ("exactjson", "kmp.errors", "kmp.frame", "kmp.value", "kmp.messages", "kmp.link",
            "ticks", "timefmt", "guard", "mqttlink", "payloads", "node", "loop", "lazybuffer",
            "board")  # fmt: skip


def steps():
    gc.collect()
    base = gc.mem_alloc()
    yield
    import os  # noqa: F401  (built into the ESP32 firmware; a Python wrapper in this port)

    import machine  # noqa: F401  (the fakes board.py imports: not part of the app)
    import network  # noqa: F401

    yield
    gc_base = gc.mem_alloc()
    for name in RESIDENT:
        __import__(name)
    yield
    imported = gc.mem_alloc() - gc_base
    # The node's own objects: config, node, link (with its buffers), MQTT session, guard.
    import config
    from fake_clock import FakeClock
    from fake_uart import FakeUart
    from kmp.link import MeterLink
    from lazybuffer import LazyBuffer
    from mqttlink import MqttLink
    from node import Node, forget_modules
    from node_harness import BASE_CONFIG, FakePlatform

    cfg = config.validate(BASE_CONFIG, target="host")
    forget_modules("config")
    clock = FakeClock()
    yield
    s0 = gc.mem_alloc()
    app = Node(cfg, MeterLink(FakeUart(clock), clock=clock), MqttLink(None, cfg, clock),
               clock, lambda: 0, FakePlatform(), buffer=LazyBuffer("/tmp/bench_buf", 672))  # fmt: skip
    yield
    state = gc.mem_alloc() - s0
    del app
    # Fakes and the virtual meter come from source and are test scaffolding: measured apart.
    from node_harness import Harness

    h = Harness()
    h.cycle()
    h.broker.messages.clear()
    yield
    for _ in range(20):  # warm: discovery sent, caches filled
        h.cycle()
        h.broker.messages.clear()
        h.uart.written = bytearray()
    yield
    # Allocation per full cycle, averaged over PER_CYCLE_N cycles (diag goes out every 5th):
    # meter read through the codec and link, payloads, publish to the fake client. Then the
    # fakes' share measured the same way (the meter model advancing, the fake line answering,
    # the fake UART scheduling and handing over the bytes) and taken off.
    n_messages = 0
    a0 = gc.mem_alloc()
    for _ in range(PER_CYCLE_N):
        h.cycle()
        n_messages += len(h.broker.messages)
        h.broker.messages.clear()
    per_cycle_all = (gc.mem_alloc() - a0) // PER_CYCLE_N
    h.uart.written = bytearray()
    yield
    request = h.link._requests[tuple(h.node.rids)]
    buf = bytearray(32)
    a0 = gc.mem_alloc()
    for _ in range(PER_CYCLE_N):
        h.meter.advance(60)
        h.uart.write(request)
        h.clock.advance(2000)
        while h.uart.any():
            h.uart.readinto(buf)
    per_cycle_fakes = (gc.mem_alloc() - a0) // PER_CYCLE_N
    h.uart.written = bytearray()
    yield
    heap = []
    for k in range(GROWTH_CYCLES):
        h.cycle()
        h.broker.messages.clear()
        h.uart.written = bytearray()
        if (k + 1) % 100 == 0:
            yield
            heap.append(gc.mem_alloc())
    cpu = cpu_bench(CPU_ROUNDS)
    out = {
        "resident": imported + state,
        "resident_code": imported,
        "resident_state": state,
        "per_cycle": per_cycle_all - per_cycle_fakes,
        "per_cycle_with_fakes": per_cycle_all,
        "messages_per_cycle": n_messages / PER_CYCLE_N,
        "cycles": GROWTH_CYCLES,
        "growth": heap[-1] - heap[1],
        "heap_min": min(heap[1:]),
        "heap_max": max(heap[1:]),
        "base": base,
    }
    out.update(cpu)
    print(json.dumps(out))


if sys.implementation.name == "micropython":
    MPWASM_STEPS = steps()
