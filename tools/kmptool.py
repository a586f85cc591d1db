#!/usr/bin/env python3
"""kmptool: host tool for Kamstrup Meter Protocol frames and meters.

  kmptool.py decode HEX [--layer L]   decode one frame (spaces allowed in HEX) to one JSON object;
                                      an invalid frame exits 1 with the reason on stderr
"""

import argparse
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(_ROOT, "lib"), _ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from exactjson import Number  # noqa: E402
from exactjson import dumps as exactjson_dumps  # noqa: E402
from kmp import frame, logger, messages, registers  # noqa: E402
from kmp.errors import KmpError  # noqa: E402
from kmp.value import decode_value, format_decimal  # noqa: E402

# What the HEX given to decode is: a wire frame (default) or one of the inner layers.
LAYERS = (
    "physical",  # start .. stop, stuffed
    "datalink",  # address, CID, data, CRC; unstuffed
    "datalink-nocrc",  # address, CID, data
    "application",  # CID, data
    "register",  # unit, NoB, SiEx, integer
    "value",  # NoB, SiEx, integer
    "integer",  # a bare big-endian integer, read with --unit (clock and date units)
    "logtime",  # logger timestamp YY MM DD hh mm ss WK Info
    "stuffing",  # unstuffed data: show its stuffed form
    "crc",  # CRC-16/XMODEM of the bytes
)


def register_json(reg):
    """JSON-ready dict of one register record; value is the exact decimal."""
    out = {"rid": reg.rid}
    entry = registers.by_rid(reg.rid)
    if entry:
        out["name"] = entry[1]
    out["unit_code"] = reg.unit
    out["unit"] = reg.unit_name()
    out["nob"] = reg.nob
    out["exponent"] = reg.exponent
    out["mantissa"] = reg.mantissa
    out["value"] = Number(reg.text())
    clock = reg.clock()
    if clock:
        out["time"] = "%02d:%02d:%02d" % clock
    date = reg.date()
    if date:
        out["date"] = "-".join("%02d" % f for f in date)
    return out


def application_json(cid, data, request=False):
    """Decode CID + data (the application layer) into a dict."""
    out = {"cid": cid}
    if request:
        out["request"] = True
        if cid == frame.CID_GET_REGISTER:
            out["rids"] = messages.parse_register_request(data)
        elif data:
            out["data"] = bytes(data).hex()
        return out
    if cid == frame.CID_GET_TYPE:
        meter_type, sw = messages.parse_type(data)
        out["meter_type"] = meter_type
        out["meter_type_hex"] = "0x%04X" % meter_type
        out["meter_model"] = messages.meter_type_name(meter_type)
        out["sw_revision"] = sw
    elif cid == frame.CID_GET_SERIAL:
        out["serial"] = messages.parse_serial(data)
    elif cid == frame.CID_GET_REGISTER:
        out["registers"] = [register_json(r) for r in messages.parse_registers(data)]
    elif 0xA0 <= cid <= 0xA3:
        log = logger.parse_log_response(data)
        out["log_id"] = log["log_id"]
        out["formats"] = [
            {"rid": rid, "unit_code": u, "nob": nob, "exponent": e}
            for rid, (u, nob, e) in log["formats"].items()
        ]
        out["records"] = [
            {"rec_id": rec_id, "mantissas": dict(zip([str(r) for r in log["rids"]], values))}
            for rec_id, values in log["records"]
        ]
        out["last_read_out_rec_id"] = log["last_read_out_rec_id"]
        out["newest_rec_id"] = log["newest_rec_id"]
        out["info"] = log["info"]
    else:
        out["data"] = bytes(data).hex()
    return out


def decode(raw, layer="physical", unit=0, request=False):
    """Decode bytes at the given layer into a JSON-ready dict; raises KmpError when invalid."""
    if layer == "physical":
        f = frame.decode_frame(raw)
        if f.ack:
            return {"ack": True}
        out = {"address": f.address}
        out.update(application_json(f.cid, f.data, request=f.start == frame.START_TO_METER))
        return out
    if layer == "datalink":
        if len(raw) < 4:
            raise frame.FrameError("datalink: %d byte(s), need address, CID and CRC" % len(raw))
        if frame.crc16(raw) != 0:
            got = (raw[-2] << 8) | raw[-1]
            raise frame.CrcError(
                "CRC mismatch: frame says 0x%04X, computed 0x%04X" % (got, frame.crc16(raw[:-2]))
            )
        out = {"address": raw[0]}
        out.update(application_json(raw[1], raw[2:-2]))
        return out
    if layer == "datalink-nocrc":
        if len(raw) < 2:
            raise frame.FrameError("datalink: %d byte(s), need address and CID" % len(raw))
        out = {"address": raw[0]}
        out.update(application_json(raw[1], raw[2:]))
        return out
    if layer == "application":
        if not raw:
            raise frame.FrameError("application: no CID byte")
        return application_json(raw[0], raw[1:], request)
    if layer == "register":
        mantissa, exponent, nob, end = decode_value(raw, 1)
        _check_end(raw, end)
        reg = messages.Register(0, raw[0], nob, mantissa, exponent)
        out = register_json(reg)
        del out["rid"]
        return out
    if layer == "value":
        mantissa, exponent, nob, end = decode_value(raw, 0)
        _check_end(raw, end)
        return {
            "nob": nob,
            "exponent": exponent,
            "mantissa": mantissa,
            "value": Number(format_decimal(mantissa, exponent)),
        }
    if layer == "integer":
        if not 1 <= len(raw) <= 8:
            raise frame.LengthError("integer: expected 1..8 bytes, got %d" % len(raw))
        reg = messages.Register(0, unit, len(raw), int.from_bytes(raw, "big"), 0)
        out = register_json(reg)
        return {k: out[k] for k in out if k in ("unit_code", "unit", "value", "time", "date")}
    if layer == "logtime":
        y, mo, d, h, mi, sec = logger.parse_log_time(raw)
        return {"datetime": "%04d-%02d-%02d %02d:%02d:%02d" % (y, mo, d, h, mi, sec)}
    if layer == "stuffing":
        return {"unstuffed": raw.hex(), "stuffed": frame.stuff(raw).hex()}
    if layer == "crc":
        crc = frame.crc16(raw)
        return {"crc": crc, "crc_hex": "0x%04X" % crc}
    raise ValueError("unknown layer %r" % layer)


def _check_end(raw, end):
    if end != len(raw):
        raise frame.LengthError("%d trailing byte(s) after the value" % (len(raw) - end))


def parse_hex(text):
    cleaned = "".join(text.split())
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise ValueError("not a hex string: %r" % text)


def parse_int(text):
    return int(text, 16) if text[:2].lower() == "0x" else int(text)


def cmd_decode(args):
    try:
        raw = parse_hex(" ".join(args.hex))
        print(exactjson_dumps(decode(raw, args.layer, parse_int(args.unit), args.request)))
    except (KmpError, ValueError) as e:
        print("kmptool: invalid frame: %s" % e, file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="kmptool.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("decode", help="decode one KMP frame given in hex")
    p.add_argument("hex", nargs="+", help="frame bytes in hex, spaces allowed")
    p.add_argument("--layer", choices=LAYERS, default="physical",
                   help="what the bytes are: a wire frame (default), unstuffed address..CRC, "
                        "CID+data, unit+value, or a bare value")  # fmt: skip
    p.add_argument("--unit", default="0", help="unit code for --layer integer, e.g. 0x2F")
    p.add_argument("--request", action="store_true",
                   help="with --layer application: the bytes are a request to the meter")  # fmt: skip
    p.set_defaults(func=cmd_decode)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
