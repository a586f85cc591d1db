# KMP register values: [NoB][SiEx][integer, NoB bytes big-endian], value = ±integer × 10^±exp.
# Kept as an integer mantissa and a decimal exponent, and turned into text with integer
# arithmetic only: ESP32 MicroPython floats are single precision and would lose digits.

from kmp.errors import LengthError

MAX_NOB = 8


def decode_value(buf, offset=0):
    """Decode [NoB][SiEx][integer] at offset; returns (mantissa, exponent, nob, end_offset)."""
    if len(buf) - offset < 2:
        raise LengthError(
            "value: need NoB and SiEx bytes, got %d byte(s)" % max(0, len(buf) - offset)
        )
    nob = buf[offset]
    siex = buf[offset + 1]
    if not 1 <= nob <= MAX_NOB:
        raise LengthError("value: NoB %d out of range, expected 1..%d" % (nob, MAX_NOB))
    end = offset + 2 + nob
    if end > len(buf):
        raise LengthError(
            "value: NoB %d needs %d byte(s), got %d" % (nob, nob, len(buf) - offset - 2)
        )
    mantissa = 0
    for i in range(offset + 2, end):
        mantissa = (mantissa << 8) | buf[i]
    if siex & 0x80:
        mantissa = -mantissa
    exponent = siex & 0x3F
    if siex & 0x40:
        exponent = -exponent
    return mantissa, exponent, nob, end


def siex_byte(mantissa, exponent):
    """The SiEx byte for a sign and a decimal exponent (-63..63)."""
    if not -63 <= exponent <= 63:
        raise ValueError("exponent: expected -63..63, got %d" % exponent)
    b = exponent if exponent >= 0 else 0x40 | -exponent
    if mantissa < 0:
        b |= 0x80
    return b


def min_nob(magnitude):
    """Fewest bytes that hold a non-negative integer (at least 1)."""
    n = 1
    while magnitude >> (8 * n):
        n += 1
    return n


def encode_value(mantissa, exponent, nob=None):
    """Encode as [NoB][SiEx][integer]; nob None picks the fewest bytes."""
    magnitude = -mantissa if mantissa < 0 else mantissa
    need = min_nob(magnitude)
    if nob is None:
        nob = need
    if not need <= nob <= MAX_NOB:
        raise ValueError("value %d does not fit in %d byte(s)" % (mantissa, nob))
    out = bytearray((nob, siex_byte(mantissa, exponent)))
    for i in range(nob - 1, -1, -1):
        out.append((magnitude >> (8 * i)) & 0xFF)
    return bytes(out)


def format_decimal(mantissa, exponent):
    """Exact decimal text of mantissa × 10^exponent, keeping the meter's resolution:
    (12345, -3) -> "12.345", (20000, -2) -> "200.00", (255, 3) -> "255000"."""
    negative = mantissa < 0
    magnitude = -mantissa if negative else mantissa
    if exponent >= 0:
        text = str(magnitude * 10**exponent)
    else:
        # One formatted string instead of slicing and joining: this runs for every value of
        # every cycle on the ESP32.
        places = -exponent
        whole, frac = divmod(magnitude, 10**places)
        text = "%d.%0*d" % (whole, places, frac)
    return "-" + text if negative else text


def parse_decimal(text):
    """Inverse of format_decimal: "-12.345" -> (-12345, -3). For config and tests."""
    text = text.strip()
    negative = text.startswith("-")
    if negative or text.startswith("+"):
        text = text[1:]
    whole, _, frac = text.partition(".")
    if not (whole + frac).isdigit() or not whole:
        raise ValueError("not a decimal number: %r" % text)
    mantissa = int(whole + frac)
    return (-mantissa if negative else mantissa), -len(frac)


def integer_value(mantissa, exponent):
    """The value as an int when it is a whole number with a non-negative exponent, else None."""
    if exponent < 0:
        return None
    return mantissa * 10**exponent
