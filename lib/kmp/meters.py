# Meter type names for GetType codes, for discovery's device model and the tools (a module of
# its own: the node loads it only while it announces).
#
# Kamstrup has published GetType codes only for the MULTICAL 601 (and its modules): doc 5512-447
# rev M1, "KMP Kamstrup Heat Meter Protocol, MULTICAL 601 and MULTICAL 801", section 6.2.1
# (docs/mqtt.md#meter-type-codes). Newer meters (302/402/403/602/603/803, flowIQ) answer with
# codes no public source lists: those are shown as their code, and `meter.model` in config.json
# names the meter instead.

_METER_TYPES = {
    0x0001: "MULTICAL 601 (Pt500)",
    0x0004: "MULTICAL 601 (Pt100)",
    0x0005: "MULTICAL 601 (Pt500, 4-wire)",
    0x1501: "MULTICAL 601 (Pt500) via 67-05",
    0x1504: "MULTICAL 601 (Pt100) via 67-05",
    0x1505: "MULTICAL 601 (Pt500, 4-wire) via 67-05",
}
# By the code's high byte: modules that answer on their own KMP address (same section).
_MODULE_TYPES = {
    0x09: "MULTICAL 601 top module",  # KMP address 0x7F
    0x16: "MULTICAL 601 base module",  # KMP address 0xBF
}


def meter_type_name(meter_type):
    """A model name for a GetType code: the documented name, else the code itself
    ("KMP meter, type 0x0403"; the manufacturer, Kamstrup, is shown beside it)."""
    name = _METER_TYPES.get(meter_type)
    if name is not None:
        return name
    module = _MODULE_TYPES.get(meter_type >> 8)
    if module is not None:
        return "%s, type 0x%04X" % (module, meter_type)
    return "KMP meter, type 0x%04X" % meter_type
