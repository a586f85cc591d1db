"""Tiny test harness for MicroPython (WASM port / device) and CPython.

Usage at the end of a suite::

    from mptest import run, assert_raises
    def test_something():
        assert 1 + 1 == 2
    run(globals())

Runs every function named ``test_*`` (in definition order when the source file can be read,
else sorted by name), prints failures with their traceback, closes with one line
``<suite>: N passed, N failed`` and raises SystemExit(1) if anything failed.
"""

import sys


def assert_raises(exc_type, fn, *args, **kwargs):
    """Call fn(*args, **kwargs); return the exception if it is an exc_type, else fail."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    name = getattr(exc_type, "__name__", str(exc_type))
    raise AssertionError("%s not raised by %s" % (name, getattr(fn, "__name__", fn)))


def _print_exc(e):
    if hasattr(sys, "print_exception"):
        sys.print_exception(e, sys.stdout)  # MicroPython
    else:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stdout)


def _source_order(path):
    # MicroPython dicts are unordered and functions carry no line numbers: read the source.
    names = []
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("def test_"):
                    names.append(line[4:].split("(")[0].strip())
    except (OSError, TypeError):
        pass
    return names


def run(g, name=None):
    """Run the test_* functions of globals dict g; SystemExit(1) if any failed."""
    path = g.get("__file__", "")
    if name is None:
        name = (path.replace("\\", "/").split("/")[-1] or "tests").split(".")[0]
    tests = [k for k in g if k.startswith("test_") and callable(g[k])]
    order = _source_order(path)
    tests.sort(key=lambda k: (order.index(k), "") if k in order else (len(order), k))
    passed = failed = 0
    for t in tests:
        try:
            g[t]()
            passed += 1
        except Exception as e:
            failed += 1
            print("FAIL %s: %s" % (t, e.__class__.__name__))
            _print_exc(e)
    print("%s: %d passed, %d failed" % (name, passed, failed))
    if failed:
        raise SystemExit(1)
    return passed, failed
