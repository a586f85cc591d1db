# One-shot read on the board to align the IR head: identity, the configured registers and the
# link counters, printed. `make probe PORT=/dev/ttyUSB0` runs it through mpremote; run it again
# while moving the head until every register answers without errors.

from kmp.errors import KmpError
from kmp.link import MeterLink


def run(uart, cfg, out=print, clock=None):
    """Read identity and registers through uart; returns the number of registers read."""
    m = cfg["meter"]
    link = MeterLink(uart, m["address"], timeout_ms=m["timeout_ms"], retries=m["retries"],
                     clock=clock)  # fmt: skip
    try:
        meter_type, sw = link.get_type()
        out("meter type 0x%04X, software %s" % (meter_type, sw))
        out("serial %d" % link.get_serial())
    except KmpError as e:
        out("identity: %s" % e)
    res = link.read([rid for _, rid, _ in cfg["registers"]])
    for sid, rid, _ in cfg["registers"]:
        reg = res.values.get(rid)
        if reg is not None:
            out("%-20s %14s %s" % (sid, reg.text(), reg.unit_name()))
        elif rid in res.unsupported:
            out("%-20s %14s" % (sid, "unsupported"))
        else:
            out("%-20s %14s" % (sid, "no value"))
    c = link.counters()
    out("link: %d requests, %d responses, %d timeouts, %d CRC errors, %d frame errors, %d retries"
        % (c["requests"], c["responses"], c["timeouts"], c["crc_errors"], c["frame_errors"],
           c["retries"]))  # fmt: skip
    out("link: %d bytes sent, %d received, last exchange %d ms"
        % (c["bytes_tx"], c["bytes_rx"], c["last_exchange_ms"]))  # fmt: skip
    if res.no_answer:
        out("no answer: check the head's position and magnets, or press a meter button")
    return len(res.values)
