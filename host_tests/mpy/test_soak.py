# Soak under real MicroPython 1.29: 10,000 node cycles with faults mixed in (corrupt frames,
# an asleep meter, broker outages, a MemoryError now and then). No crash, nothing lost that the
# buffer could hold, and the heap after gc.collect() does not grow.
#
# This port's GC frees garbage only at the top level, so the soak runs in steps (MPWASM_STEPS):
# tools/mpwasm.mjs calls gc.collect() between steps, and the heap is measured there.

import gc
import os

from node_harness import Harness

CYCLES = 10000
STEP = 250
WARMUP_STEPS = 4
TOLERANCE = 1024  # bytes: noise from log strings of varying length, dict resizes
# Heap is compared at step ends with no backlog: while readings wait, the flash buffer's code
# is legitimately loaded (lazybuffer.py) and dropped again once they are delivered.


def soak():
    try:
        os.mkdir("/tmp")
    except OSError:
        pass
    h = Harness(buffer_path="/tmp/soak_buf", capacity=672, corrupt_rate=0.02, echo=True,
                stray_zeros=0.1)  # fmt: skip
    checks = []
    heap = []
    crashes = 0
    real_read = h.link.read

    def flaky_read(rids):
        raise MemoryError("injected")

    for k in range(CYCLES):
        phase = k % 1000
        h.line.asleep = 300 <= phase < 340  # the optical eye sleeps for a while
        h.broker.up = not (500 <= phase < 560)  # and the broker goes away
        if phase == 700:
            h.link.read = flaky_read
        elif phase == 701:
            h.link.read = real_read
        try:
            h.cycle()
        except BaseException as e:  # the node must never let anything out
            crashes += 1
            print("crash at cycle %d: %r" % (k, e))
        h.broker.messages.clear()
        h.uart.written = bytearray()
        if (k + 1) % STEP == 0:
            yield  # gc.collect() runs between steps, at the top level
            if h.buffer._buf is None:  # compare like with like: no backlog held in RAM
                heap.append(gc.mem_alloc())
    checks.append(("no crash", crashes == 0))
    checks.append(("every cycle counted", h.node.cycles == CYCLES))
    checks.append(("faults were seen", h.link.crc_errors + h.link.frame_errors > 0))
    checks.append(("meter no-answers seen", h.link.timeouts > 0))
    checks.append(("injected errors counted", h.node.errors > 0))
    checks.append(("outages buffered and delivered", h.node.history_sent > 0))
    checks.append(("nothing lost", h.node.lost == 0 and h.buffer.dropped == 0))
    steady = heap[WARMUP_STEPS:]
    growth = max(steady) - steady[0]
    checks.append(("heap flat after gc.collect (growth %d B)" % growth, growth <= TOLERANCE))
    print("soak: %d cycles, heap after gc %d..%d B, CRC/frame errors %d, timeouts %d, history %d"
          % (h.node.cycles, min(steady), max(steady), h.link.crc_errors + h.link.frame_errors,
             h.link.timeouts, h.node.history_sent))  # fmt: skip
    failed = [name for name, ok in checks if not ok]
    for name in failed:
        print("FAIL", name)
    print("soak: %d passed, %d failed" % (len(checks) - len(failed), len(failed)))
    if failed:
        raise SystemExit(1)


MPWASM_STEPS = soak()
