#!/usr/bin/env python3
"""kmptool: host tool for Kamstrup Meter Protocol frames and meters.

  kmptool.py decode HEX [--layer L]   decode one frame (spaces allowed in HEX) to one JSON object;
                                      an invalid frame exits 1 with the reason on stderr
  kmptool.py read --port DEV [REG...] read registers (names such as heat_energy, or ids 60 / 0x3C;
                                      default: the seven ESPHome sensors)
  kmptool.py serial --port DEV        the meter's serial number
  kmptool.py type --port DEV          the meter's type and software revision
  kmptool.py simulate [options]       start the virtual MULTICAL 403 and print its device path

read, serial and type talk 1200 baud 8N2 through pyserial (a USB IR head or the simulator's pty),
take --json, and exit 1 with the reason on stderr when the meter does not answer.
"""

import argparse
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(_ROOT, "lib"), os.path.join(_ROOT, "tools"), _ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from exactjson import Number  # noqa: E402
from exactjson import dumps as exactjson_dumps  # noqa: E402
from kmp import frame, logger, messages, registers, strict  # noqa: E402
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
    if not isinstance(reg, messages.Register):  # the link's lean record: add dates and times
        reg = messages.Register(reg.rid, reg.unit, reg.nob, reg.mantissa, reg.exponent)
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
        elif cid in (frame.CID_GET_TYPE, frame.CID_GET_SERIAL):
            messages.check_plain_request(cid, data)
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
            {"rid": rid, "unit_code": u, "nob": nob, "siex": "0x%02X" % s,
             "exponent": -(s & 0x3F) if s & 0x40 else s & 0x3F, "negative": bool(s & 0x80)}
            for rid, (u, nob, s) in log["formats"].items()
        ]  # fmt: skip
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
        f = strict.decode_frame(raw)
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


def _open_link(args):
    from host.serial_uart import SerialUart
    from kmp.link import MeterLink

    try:
        uart = SerialUart(args.port)
    except OSError as e:  # one clear line, not pyserial's traceback
        print("kmptool: %s (is the IR head plugged in? --port names it)" % e, file=sys.stderr)
        return None, None
    link = MeterLink(uart, address=args.address, timeout_ms=args.timeout_ms, retries=args.retries)
    return uart, link


def _fail_link(e, rids=()):
    from kmp.errors import NoAnswer, PortError

    if e is None:
        print(
            "kmptool: the meter answered without %s: it does not have %s"
            % (", ".join("0x%04X" % r for r in rids), "it" if len(rids) == 1 else "them"),
            file=sys.stderr,
        )
    elif isinstance(e, PortError):
        print("kmptool: %s" % e, file=sys.stderr)
    elif isinstance(e, NoAnswer):
        print(
            "kmptool: %s (is the IR head aligned and the optical eye awake? press a meter "
            "button to wake it)" % e,
            file=sys.stderr,
        )
    else:
        print("kmptool: bad answer from the meter: %s" % e, file=sys.stderr)
    return 1


def cmd_read(args):
    try:
        rids = [registers.parse_rid(r) for r in (args.registers or registers.SENSOR_KEYS)]
    except ValueError as e:
        print("kmptool: %s" % e, file=sys.stderr)
        return 2
    uart, link = _open_link(args)
    if uart is None:
        return 1
    try:
        res = link.read(rids)
    finally:
        uart.close()
    if args.json:
        print(
            exactjson_dumps(
                {
                    "registers": [register_json(res.values[r]) for r in rids if r in res.values],
                    "missing": res.missing,
                    "unsupported": res.unsupported,
                    "link": link.counters(),
                }
            )
        )
    else:
        for rid in rids:
            reg = res.values.get(rid)
            entry = registers.by_rid(rid)
            label = entry[1] if entry else "0x%04X" % rid
            if reg is not None:
                print("%-22s %14s %s" % (label, reg.text(), reg.unit_name()))
            elif rid in res.unsupported:
                print("%-22s %14s" % (label, "unsupported"))
            else:
                print("%-22s %14s" % (label, "missing"))
        c = link.counters()
        print(
            "link: %d request(s), %d bytes sent, %d received, last exchange %d ms"
            % (c["requests"], c["bytes_tx"], c["bytes_rx"], c["last_exchange_ms"])
        )
    if not res.values:
        return _fail_link(res.error, rids)
    return 0


def cmd_serial(args):
    uart, link = _open_link(args)
    if uart is None:
        return 1
    try:
        serial_no = link.get_serial()
    except KmpError as e:
        return _fail_link(e)
    finally:
        uart.close()
    print(exactjson_dumps({"serial": serial_no}) if args.json else serial_no)
    return 0


def cmd_type(args):
    uart, link = _open_link(args)
    if uart is None:
        return 1
    try:
        meter_type, sw = link.get_type()
    except KmpError as e:
        return _fail_link(e)
    finally:
        uart.close()
    out = {
        "meter_type": meter_type,
        "meter_type_hex": "0x%04X" % meter_type,
        "meter_model": messages.meter_type_name(meter_type),
        "sw_revision": sw,
    }
    if args.json:
        print(exactjson_dumps(out))
    else:
        print("%s (type 0x%04X), software %s" % (out["meter_model"], meter_type, sw or "n/a"))
    return 0


def cmd_simulate(args):
    return cmd_simulate_argv(args.sim_args)


def cmd_simulate_argv(argv):
    import kmpsim

    return kmpsim.main(argv, prog="kmptool.py simulate")


def _link_options(p):
    p.add_argument("--port", required=True, help="serial device: USB IR head or simulator pty")
    p.add_argument("--address", type=parse_int, default=frame.DEFAULT_ADDRESS,
                   help="meter address (default 0x3F, the heat meter)")  # fmt: skip
    p.add_argument("--timeout-ms", type=int, default=1600, help="first-byte deadline (ms)")
    p.add_argument("--retries", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["simulate"]:
        return cmd_simulate_argv(argv[1:])  # every option belongs to kmpsim
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
    p = sub.add_parser("read", help="read registers from a meter")
    p.add_argument("registers", nargs="*", help="names (heat_energy) or ids (60, 0x3C)")
    _link_options(p)
    p.set_defaults(func=cmd_read)
    p = sub.add_parser("serial", help="read the meter's serial number")
    _link_options(p)
    p.set_defaults(func=cmd_serial)
    p = sub.add_parser("type", help="read the meter's type and software revision")
    _link_options(p)
    p.set_defaults(func=cmd_type)
    p = sub.add_parser("simulate", help="run the virtual MULTICAL 403 on a pty",
                       add_help=False)  # fmt: skip
    p.add_argument("sim_args", nargs=argparse.REMAINDER, help="options of tools/kmpsim.py")
    p.set_defaults(func=cmd_simulate)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
