# Home Assistant classes for a meter register: device_class, state_class and the exact unit
# string, decided from the register's kind and the unit code the meter sent (never hard-coded:
# the same MULTICAL 403 counts heat in GJ, kWh or MWh depending on its configuration).
#
# HA rejects a sensor whose unit is not one of the exact strings accepted for its device class
# (sensor/const.py DEVICE_CLASS_UNITS, see /work/shared/ha/DISCOVERY.md 2.3), and warns about a
# state class outside DEVICE_CLASS_STATE_CLASSES. KMP spells m3, l/h, kCal: every unit is
# translated here, and when no valid pair exists the device class is dropped, never the unit.
# Portable: MicroPython 1.29 and CPython.

from kmp import registers, units

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


_RID_TEMP_DIFF = const(0x0059)  # T1-T2: a temperature difference even when the meter says °C
# Home Assistant versions as YYYYMM (config mqtt.ha_version): the first that accept a class.
HA_L_PER_H = const(202505)  # volume_flow_rate in L/h (core PR #143625)
HA_TEMPERATURE_DELTA = const(202511)  # device_class temperature_delta (core PR #147358)

ENERGY = "energy"
POWER = "power"
TEMPERATURE = "temperature"
TEMPERATURE_DELTA = "temperature_delta"  # HA >= 2025.11 (core PR #147358)
VOLUME = "volume"
VOLUME_FLOW_RATE = "volume_flow_rate"
PRESSURE = "pressure"
DURATION = "duration"
VOLTAGE = "voltage"
CURRENT = "current"
FREQUENCY = "frequency"

MEASUREMENT = "measurement"
TOTAL = "total"
TOTAL_INCREASING = "total_increasing"

# KMP unit name (kmp.units) -> (HA unit string, device class or None).
_UNITS = {
    "Wh": ("Wh", ENERGY),
    "kWh": ("kWh", ENERGY),
    "MWh": ("MWh", ENERGY),
    "GWh": ("GWh", ENERGY),
    "J": ("J", ENERGY),
    "kJ": ("kJ", ENERGY),
    "MJ": ("MJ", ENERGY),
    "GJ": ("GJ", ENERGY),
    "Cal": ("cal", ENERGY),
    "kCal": ("kcal", ENERGY),
    "Mcal": ("Mcal", ENERGY),
    "Gcal": ("Gcal", ENERGY),
    "W": ("W", POWER),
    "kW": ("kW", POWER),
    "MW": ("MW", POWER),
    "GW": ("GW", POWER),
    "°C": ("°C", TEMPERATURE),
    "K": ("K", TEMPERATURE_DELTA),  # a heat meter only reports differences in kelvin
    "l": ("L", VOLUME),
    "m³": ("m³", VOLUME),
    "USgal": ("gal", VOLUME),
    "l/h": ("L/h", VOLUME_FLOW_RATE),  # HA >= 2025.5 (core PR #143625)
    "m³/h": ("m³/h", VOLUME_FLOW_RATE),
    "USgal/min": ("gal/min", VOLUME_FLOW_RATE),
    "bar": ("bar", PRESSURE),
    "h": ("h", DURATION),
    "min": ("min", DURATION),
    "s": ("s", DURATION),
    "ms": ("ms", DURATION),
    "days": ("d", DURATION),
    "V": ("V", VOLTAGE),
    "kV": ("kV", VOLTAGE),
    "A": ("A", CURRENT),
    "Hz": ("Hz", FREQUENCY),
}

# KMP "units" that are value formats, not units of measurement: no unit_of_measurement.
_FORMATS = (
    "", "hh:mm:ss", "yy:mm:dd", "yyyy:mm:dd", "mm:dd", "RTC", "ASCII", "bitfield", "RTC-Q",
    "datetime", "KamDateTime", "IPv4", "IPv6",
)  # fmt: skip

# What HA accepts for the device classes above (subset of sensor/const.py @00eb6680): the
# final guard, so a surprising combination loses its device class instead of the entity.
_ALLOWED_UNITS = {
    ENERGY: ("J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal",
             "Mcal", "Gcal"),
    POWER: ("mW", "W", "kW", "MW", "GW", "TW", "BTU/h"),
    TEMPERATURE: ("°C", "°F", "K"),
    TEMPERATURE_DELTA: ("°C", "°F", "K"),
    VOLUME: ("mL", "L", "m³", "ft³", "CCF", "fl. oz.", "gal"),
    VOLUME_FLOW_RATE: ("m³/h", "m³/s", "ft³/min", "L/h", "L/min", "L/s", "gal/min", "mL/s"),
    PRESSURE: ("Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"),
    DURATION: ("d", "h", "min", "s", "ms"),
    VOLTAGE: ("µV", "mV", "V", "kV", "MV"),
    CURRENT: ("mA", "A"),
    FREQUENCY: ("Hz", "kHz", "MHz", "GHz"),
}  # fmt: skip
_ANY_STATE = (MEASUREMENT, TOTAL, TOTAL_INCREASING)
_ALLOWED_STATES = {
    ENERGY: (TOTAL, TOTAL_INCREASING),
    POWER: (MEASUREMENT,),
    TEMPERATURE: (MEASUREMENT,),
    TEMPERATURE_DELTA: (MEASUREMENT,),
    VOLUME: (TOTAL, TOTAL_INCREASING),
    VOLUME_FLOW_RATE: (MEASUREMENT,),
    PRESSURE: (MEASUREMENT,),
    DURATION: _ANY_STATE,
    VOLTAGE: (MEASUREMENT,),
    CURRENT: (MEASUREMENT,),
    FREQUENCY: (MEASUREMENT,),
}


def unit(unit_code):
    """The meter's unit in HA spelling ('GJ', 'm³', 'L/h', 'kcal'), the KMP name for units HA
    has no spelling of ('m³×°C'), or None for value formats, unknown codes and None."""
    if unit_code is None or not units.is_known(unit_code):
        return None
    name = units.unit_name(unit_code)
    entry = _UNITS.get(name)
    if entry is not None:
        return entry[0]
    if name in _FORMATS:
        return None
    return name


def classes(kind, rid, unit_code, ha_version=None):
    """(device_class, state_class, unit) for a register of this kind (kmp.registers TOTAL,
    MEASURE, INFO) that reported unit_code; any of them may be None.

    TOTAL -> total_increasing, MEASURE -> measurement, INFO -> no state class. ha_version: the
    Home Assistant version as YYYYMM (202504 for 2025.4), None for a current one. An older HA
    rejects the whole entity for a device class it does not know yet (temperature_delta before
    2025.11) and warns at every start about a unit its class does not take yet (L/h for
    volume_flow_rate before 2025.5): that class is dropped, the unit stays."""
    u = unit(unit_code)
    dc = None
    if u is not None:
        dc = _UNITS.get(units.unit_name(unit_code), (None, None))[1]
    if dc == TEMPERATURE and rid == _RID_TEMP_DIFF:
        dc = TEMPERATURE_DELTA  # °C as a difference is not an absolute temperature (golles#129)
    if kind == registers.TOTAL:
        sc = TOTAL_INCREASING
    elif kind == registers.MEASURE:
        sc = MEASUREMENT
    else:
        sc = None
    if ha_version is not None:
        if dc == TEMPERATURE_DELTA and ha_version < HA_TEMPERATURE_DELTA:
            dc = None
        elif dc == VOLUME_FLOW_RATE and u == "L/h" and ha_version < HA_L_PER_H:
            dc = None
    if dc is not None and not _valid(dc, sc, u):
        dc = None
    return dc, sc, u


def _valid(dc, sc, u):
    if u not in _ALLOWED_UNITS[dc]:
        return False
    return sc is None or sc in _ALLOWED_STATES[dc]


def precision(exponent):
    """suggested_display_precision for a register's exponent: -3 -> 3 decimals, >= 0 -> 0."""
    if exponent is None:
        return None
    return -exponent if exponent < 0 else 0
