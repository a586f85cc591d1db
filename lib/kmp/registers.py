# Register ids with names (PROTOCOL.md section 5). The seven ESPHome kamstrup_kmp sensors keep
# ESPHome's keys so config.json reads like an ESPHome config.
#
# kind: TOTAL    a counter that only grows (energy, volume): total_increasing, guarded
#       MEASURE  an instantaneous measurement (power, temperature, flow)
#       INFO     anything else (dates, counters, codes, identities)

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


TOTAL = const(0)
MEASURE = const(1)
INFO = const(2)

# The ESPHome kamstrup_kmp sensor keys, in ESPHome's order.
SENSOR_KEYS = ("heat_energy", "power", "temp1", "temp2", "temp_diff", "flow", "volume")

# (rid, key, label, kind)
TABLE = (
    (0x003C, "heat_energy", "Heat energy (E1)", TOTAL),
    (0x003D, "e4", "Flow energy (E4)", TOTAL),
    (0x003E, "e5", "Return-flow energy (E5)", TOTAL),
    (0x003F, "e3", "Cooling energy (E3)", TOTAL),
    (0x0040, "ta2", "Tariff register 2", TOTAL),
    (0x0041, "ta3", "Tariff register 3", TOTAL),
    (0x0044, "volume", "Volume (V1)", TOTAL),
    (0x0045, "volume2", "Volume (V2)", TOTAL),
    (0x0048, "mass1", "Mass (M1)", TOTAL),
    (0x0049, "mass2", "Mass (M2)", TOTAL),
    (0x004A, "flow", "Flow (V1)", MEASURE),
    (0x004B, "flow2", "Flow (V2)", MEASURE),
    (0x0050, "power", "Power", MEASURE),
    (0x0054, "input_a", "Pulse input A", TOTAL),
    (0x0055, "input_b", "Pulse input B", TOTAL),
    (0x0056, "temp1", "Flow temperature (T1)", MEASURE),
    (0x0057, "temp2", "Return temperature (T2)", MEASURE),
    (0x0058, "temp3", "Temperature T3", MEASURE),
    (0x0059, "temp_diff", "Temperature difference (T1-T2)", MEASURE),
    (0x005B, "pressure1", "Pressure P1", MEASURE),
    (0x005C, "pressure2", "Pressure P2", MEASURE),
    (0x005E, "e2", "Control energy (E2)", TOTAL),
    (0x005F, "e6", "Tap-water energy (E6)", TOTAL),
    (0x0060, "e7", "Heat energy Y (E7)", TOTAL),
    (0x0061, "e8", "m³·T1 (E8)", TOTAL),
    (0x0062, "target_date", "Target date", INFO),
    (0x0063, "info_code", "Info code", INFO),
    (0x006E, "e9", "m³·T2 (E9)", TOTAL),
    (0x0071, "info_events", "Info-event counter", INFO),
    (0x007A, "temp4", "Temperature T4", MEASURE),
    (0x007B, "max_flow_year_date", "Yearly max flow, date", INFO),
    (0x007C, "max_flow_year", "Yearly max flow", INFO),
    (0x007D, "min_flow_year_date", "Yearly min flow, date", INFO),
    (0x007E, "min_flow_year", "Yearly min flow", INFO),
    (0x007F, "max_power_year_date", "Yearly max power, date", INFO),
    (0x0080, "max_power_year", "Yearly max power", INFO),
    (0x0081, "min_power_year_date", "Yearly min power, date", INFO),
    (0x0082, "min_power_year", "Yearly min power", INFO),
    (0x008A, "max_flow_month_date", "Monthly max flow, date", INFO),
    (0x008B, "max_flow_month", "Monthly max flow", INFO),
    (0x008C, "min_flow_month_date", "Monthly min flow, date", INFO),
    (0x008D, "min_flow_month", "Monthly min flow", INFO),
    (0x008E, "max_power_month_date", "Monthly max power, date", INFO),
    (0x008F, "max_power_month", "Monthly max power", INFO),
    (0x0090, "min_power_month_date", "Monthly min power, date", INFO),
    (0x0091, "min_power_month", "Monthly min power", INFO),
    (0x0092, "avg_temp1_year", "Yearly average T1", INFO),
    (0x0093, "avg_temp2_year", "Yearly average T2", INFO),
    (0x0095, "avg_temp1_month", "Monthly average T1", INFO),
    (0x0096, "avg_temp2_month", "Monthly average T2", INFO),
    (0x009B, "heat_energy_high_res_601", "High-resolution energy (601/402)", INFO),
    (0x00AF, "error_hours", "Error hour counter", INFO),
    (0x00EF, "volume_high_res", "High-resolution volume V1", INFO),
    # MC403: drops digits above 10^7 Wh (PROTOCOL.md section 5 notes): not a total.
    (0x010A, "heat_energy_high_res", "High-resolution heat energy (E1, truncated)", INFO),
    (0x03E9, "serial_no", "Serial number", INFO),
    (0x03EA, "clock", "Meter clock", INFO),
    (0x03EB, "date", "Meter date", INFO),
    (0x03EC, "hour_counter", "Operating hours", INFO),
    (0x03ED, "meter_type", "Meter type / software edition", INFO),
    (0x03F2, "customer_no", "Customer number", INFO),
)


def by_rid(rid):
    """(rid, key, label, kind) for a register id, or None."""
    for entry in TABLE:
        if entry[0] == rid:
            return entry
    return None


def by_key(key):
    """(rid, key, label, kind) for a key such as 'heat_energy', or None."""
    for entry in TABLE:
        if entry[1] == key:
            return entry
    return None


def parse_rid(text):
    """A register given as a key ('heat_energy'), decimal ('60') or hex ('0x3C') -> rid."""
    entry = by_key(text)
    if entry:
        return entry[0]
    try:
        rid = int(text, 16) if text[:2] in ("0x", "0X") else int(text)
    except ValueError:
        raise ValueError("unknown register %r: use a name such as heat_energy, or an id" % text)
    if not 0 <= rid <= 0xFFFF:
        raise ValueError("register id %r out of range 0..0xFFFF" % text)
    return rid
