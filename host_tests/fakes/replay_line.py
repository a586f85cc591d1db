# A meter replayed from recorded frames: each request gets the next response recorded for the
# same request bytes (the last one again when they run out). It needs no codec, so a benchmark
# can put a meter behind the fake UART without loading any of the code it measures.
# Same contract as virtual_meter.FaultyLine.on_request: request -> [(delay_ms, bytes)].


class ReplayLine:
    def __init__(self, recorded, latency_ms=60):
        """recorded: {request hex: [response hex, ...]} in the order the meter sent them."""
        self._responses = {}
        for request, responses in recorded.items():
            self._responses[bytes.fromhex(request)] = [bytes.fromhex(r) for r in responses]
        self._next = {}
        self.latency_ms = latency_ms
        self.requests = 0

    def __call__(self, wire):
        self.requests += 1
        key = bytes(wire)
        responses = self._responses.get(key)
        if not responses:
            return []  # never recorded: silence, like a meter that does not know it
        i = self._next.get(key, 0)
        self._next[key] = i + 1
        return [(self.latency_ms, responses[min(i, len(responses) - 1)])]
