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

# (rid, key, kind), the meaning in the comment (labels cost RAM on the ESP32)
TABLE = (
    (0x003C, "heat_energy", TOTAL),  # Heat energy (E1)
    (0x003D, "e4", TOTAL),  # Flow energy (E4)
    (0x003E, "e5", TOTAL),  # Return-flow energy (E5)
    (0x003F, "e3", TOTAL),  # Cooling energy (E3)
    (0x0040, "ta2", TOTAL),  # Tariff register 2
    (0x0041, "ta3", TOTAL),  # Tariff register 3
    (0x0044, "volume", TOTAL),  # Volume (V1)
    (0x0045, "volume2", TOTAL),  # Volume (V2)
    (0x0048, "mass1", TOTAL),  # Mass (M1)
    (0x0049, "mass2", TOTAL),  # Mass (M2)
    (0x004A, "flow", MEASURE),  # Flow (V1)
    (0x004B, "flow2", MEASURE),  # Flow (V2)
    (0x0050, "power", MEASURE),  # Power
    (0x0054, "input_a", TOTAL),  # Pulse input A
    (0x0055, "input_b", TOTAL),  # Pulse input B
    (0x0056, "temp1", MEASURE),  # Flow temperature (T1)
    (0x0057, "temp2", MEASURE),  # Return temperature (T2)
    (0x0058, "temp3", MEASURE),  # Temperature T3
    (0x0059, "temp_diff", MEASURE),  # Temperature difference (T1-T2)
    (0x005B, "pressure1", MEASURE),  # Pressure P1
    (0x005C, "pressure2", MEASURE),  # Pressure P2
    (0x005E, "e2", TOTAL),  # Control energy (E2)
    (0x005F, "e6", TOTAL),  # Tap-water energy (E6)
    (0x0060, "e7", TOTAL),  # Heat energy Y (E7)
    (0x0061, "e8", TOTAL),  # m³·T1 (E8)
    (0x0062, "target_date", INFO),  # Target date
    (0x0063, "info_code", INFO),  # Info code
    (0x006E, "e9", TOTAL),  # m³·T2 (E9)
    (0x0071, "info_events", INFO),  # Info-event counter
    (0x007A, "temp4", MEASURE),  # Temperature T4
    (0x007B, "max_flow_year_date", INFO),  # Yearly max flow, date
    (0x007C, "max_flow_year", INFO),  # Yearly max flow
    (0x007D, "min_flow_year_date", INFO),  # Yearly min flow, date
    (0x007E, "min_flow_year", INFO),  # Yearly min flow
    (0x007F, "max_power_year_date", INFO),  # Yearly max power, date
    (0x0080, "max_power_year", INFO),  # Yearly max power
    (0x0081, "min_power_year_date", INFO),  # Yearly min power, date
    (0x0082, "min_power_year", INFO),  # Yearly min power
    (0x008A, "max_flow_month_date", INFO),  # Monthly max flow, date
    (0x008B, "max_flow_month", INFO),  # Monthly max flow
    (0x008C, "min_flow_month_date", INFO),  # Monthly min flow, date
    (0x008D, "min_flow_month", INFO),  # Monthly min flow
    (0x008E, "max_power_month_date", INFO),  # Monthly max power, date
    (0x008F, "max_power_month", INFO),  # Monthly max power
    (0x0090, "min_power_month_date", INFO),  # Monthly min power, date
    (0x0091, "min_power_month", INFO),  # Monthly min power
    (0x0092, "avg_temp1_year", INFO),  # Yearly average T1
    (0x0093, "avg_temp2_year", INFO),  # Yearly average T2
    (0x0095, "avg_temp1_month", INFO),  # Monthly average T1
    (0x0096, "avg_temp2_month", INFO),  # Monthly average T2
    (0x009B, "heat_energy_high_res_601", INFO),  # High-resolution energy (601/402)
    (0x00AF, "error_hours", INFO),  # Error hour counter
    (0x00EF, "volume_high_res", INFO),  # High-resolution volume V1
    # MC403: drops digits above 10^7 Wh (PROTOCOL.md section 5 notes): not a total.
    (0x010A, "heat_energy_high_res", INFO),  # High-resolution heat energy (E1, truncated)
    (0x03E9, "serial_no", INFO),  # Serial number
    (0x03EA, "clock", INFO),  # Meter clock
    (0x03EB, "date", INFO),  # Meter date
    (0x03EC, "hour_counter", INFO),  # Operating hours
    (0x03ED, "meter_type", INFO),  # Meter type / software edition
    (0x03F2, "customer_no", INFO),  # Customer number
)


def by_rid(rid):
    """(rid, key, kind) for a register id, or None."""
    for entry in TABLE:
        if entry[0] == rid:
            return entry
    return None


def by_key(key):
    """(rid, key, kind) for a key such as 'heat_energy', or None."""
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
