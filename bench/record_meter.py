# Records what the virtual MULTICAL answers to a node's requests over a number of read cycles,
# for the replayed meter (host_tests/fakes/replay_line.py) of the resident-memory benchmark:
# there the meter must not load the codec that is being measured. Runs on CPython.

import json

from node_harness import BASE_CONFIG, Harness


class _Recorder:
    def __init__(self, line):
        self.line = line
        self.recorded = {}

    def __call__(self, wire):
        out = self.line(wire)
        responses = [data for _, data in out if data[:1] == b"\x40"]  # the meter's frames
        if responses:
            self.recorded.setdefault(bytes(wire).hex(), []).append(responses[-1].hex())
        return out


def record(path, cycles=60):
    """Run a node against the virtual meter for cycles reads; write the config it used and
    {"frames": {request hex: [response hex, ...]}}."""
    h = Harness()
    rec = _Recorder(h.line)
    h.uart.responder = rec
    for _ in range(cycles):
        h.cycle()
    with open(path, "w") as f:
        json.dump({"config": BASE_CONFIG, "frames": rec.recorded}, f)
    return {"config": BASE_CONFIG, "frames": rec.recorded}
