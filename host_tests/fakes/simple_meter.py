# A minimal scripted meter for link tests: answers GetType, GetSerialNo and GetRegister from a
# fixed register table, with optional echo and latency. (The full virtual MULTICAL with evolving
# values and fault injection is tools/virtual_meter.py.)

from kmp import frame, messages


class SimpleMeter:
    def __init__(self, values, serial=12345678, meter_type=0x0050, sw=0x0201, echo=False,
                 latency_ms=50, address=0x3F):  # fmt: skip
        self.values = values  # rid -> (unit, mantissa, exponent)
        self.serial = serial
        self.meter_type = meter_type
        self.sw = sw
        self.echo = echo
        self.latency_ms = latency_ms
        self.address = address
        self.asleep = False
        self.requests = []  # rid lists of GetRegister requests seen

    def __call__(self, wire):
        out = [(0, wire)] if self.echo else []
        if self.asleep:
            return out
        f = frame.decode_frame(wire, frame.START_TO_METER)
        if f.address != self.address:
            return out
        if f.cid == frame.CID_GET_TYPE:
            data = bytes(
                (self.meter_type >> 8, self.meter_type & 0xFF, self.sw >> 8, self.sw & 0xFF)
            )
        elif f.cid == frame.CID_GET_SERIAL:
            data = self.serial.to_bytes(4, "big")
        else:
            rids = messages.parse_register_request(f.data)
            self.requests.append(rids)
            data = b"".join(
                messages.encode_register(rid, *self.values[rid])
                for rid in rids
                if rid in self.values
            )
        resp = frame.encode_frame(f.address, f.cid, data, frame.START_FROM_METER)
        out.append((self.latency_ms, resp))
        return out
