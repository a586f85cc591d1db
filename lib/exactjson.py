# A small JSON writer whose numbers can be exact decimal text: ESP32 floats are single precision,
# so meter values travel as text ("12.345") and are written into JSON as numbers verbatim.

import json

# Quoted forms of the keys seen so far: the same few dozen keys go out every cycle, and quoting
# them once saves an allocation per key per message (bounded: unusual keys are not cached).
_QUOTED: dict = {}
_QUOTED_MAX = 96


class Number:
    """A JSON number given by its exact decimal text, e.g. Number("12.345")."""

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, Number) and other.text == self.text

    def __repr__(self):
        return "Number(%r)" % self.text


def _write(obj, out, comma, colon):
    if isinstance(obj, Number):
        out.append(obj.text)
    elif isinstance(obj, dict):
        out.append("{")
        first = True
        for key in obj:
            if not first:
                out.append(comma)
            first = False
            q = _QUOTED.get(key)
            if q is None:
                q = json.dumps(str(key))
                if len(_QUOTED) < _QUOTED_MAX:
                    _QUOTED[key] = q
            out.append(q)
            out.append(colon)
            _write(obj[key], out, comma, colon)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for k, item in enumerate(obj):
            if k:
                out.append(comma)
            _write(item, out, comma, colon)
        out.append("]")
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    else:
        # str, int: the json module is exact for these.
        out.append(json.dumps(obj))


def dumps(obj, compact=False):
    """JSON text for dicts, lists, str, int, bool, None and Number. (Key order follows the
    dict: insertion order on CPython, not guaranteed on MicroPython.)
    compact drops the spaces after , and : (what goes over the air)."""
    out = []
    if compact:
        _write(obj, out, ",", ":")
    else:
        _write(obj, out, ", ", ": ")
    return "".join(out)
