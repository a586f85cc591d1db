# Meter type names for GetType codes, for discovery's device model and the tools (a module of
# its own: the node loads it only while it announces).

# Meter types from GetType as documented for the MULTICAL 601 (DOC section 6.2.1); other meters
# report their own codes, shown in hex.
_METER_TYPES = {
    0x0001: "MULTICAL 601 (Pt500)",
    0x0004: "MULTICAL 601 (Pt100)",
    0x0005: "MULTICAL 601 (Pt500, 4-wire)",
    0x1501: "MULTICAL 601 (Pt500) via 67-05",
    0x1504: "MULTICAL 601 (Pt100) via 67-05",
    0x1505: "MULTICAL 601 (Pt500, 4-wire) via 67-05",
}


def meter_type_name(meter_type):
    return _METER_TYPES.get(meter_type) or "Kamstrup meter type 0x%04X" % meter_type
