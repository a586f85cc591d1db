# KMP unit codes (PROTOCOL.md section 4). 0..64 from the list used by every peer (Erik Jensen via
# PyKamstrup); 21 and 25 read as W and var (the only self-consistent reading, CONPOT; the raw code
# is always kept); 65..74 are CONPOT's extensions. Unknown codes stay usable as "unit_<code>".

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


# Unit codes of the clock and date formats (kmp.messages reads them as times and dates).
CLOCK = const(47)  # hh:mm:ss as decimal hhmmss
DATE_YYMMDD = const(48)
DATE_YYYYMMDD = const(49)
DATE_MMDD = const(50)

_NAMES = (
    "", "Wh", "kWh", "MWh", "GWh", "J", "kJ", "MJ", "GJ", "Cal",  # 0-9
    "kCal", "Mcal", "Gcal", "varh", "kvarh", "Mvarh", "Gvarh", "VAh", "kVAh", "MVAh",  # 10-19
    "GVAh", "W", "kW", "MW", "GW", "var", "kvar", "Mvar", "Gvar", "VA",  # 20-29
    "kVA", "MVA", "GVA", "V", "A", "kV", "kA", "°C", "K", "l",  # 30-39
    "m³", "l/h", "m³/h", "m³×°C", "ton", "ton/h", "h", "hh:mm:ss", "yy:mm:dd", "yyyy:mm:dd",  # 40-49
    "mm:dd", "", "bar", "RTC", "ASCII", "m³×10", "ton×10", "GJ×10", "min", "bitfield",  # 50-59
    "s", "ms", "days", "RTC-Q", "datetime", "imp/l", "l/imp", "Hz", "°", "%",  # 60-69
    "USgal", "USgal/min", "KamDateTime", "IPv4", "IPv6",  # 70-74
)  # fmt: skip


def unit_name(code):
    """Human unit name for a KMP unit code; '' for plain numbers, 'unit_<code>' when unknown."""
    if 0 <= code < len(_NAMES):
        return _NAMES[code]
    return "unit_%d" % code


def is_known(code):
    return 0 <= code < len(_NAMES)
