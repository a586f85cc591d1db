"""Proves the host loop really runs MicroPython 1.29 (WASM port), not CPython."""

import sys

from mptest import assert_raises, run


def test_implementation_is_micropython():
    assert sys.implementation.name == "micropython", sys.implementation.name


def test_version_is_1_29():
    assert tuple(sys.implementation.version[:2]) == (1, 29), sys.implementation.version


def test_micropython_const():
    import micropython

    assert micropython.const(7) == 7


def test_micropython_specific_builtins():
    assert hasattr(sys, "print_exception")
    import gc

    assert gc.mem_alloc() > 0


def test_assert_raises_helper():
    e = assert_raises(ValueError, int, "x")
    assert isinstance(e, ValueError)
    assert_raises(AssertionError, assert_raises, ValueError, int, "1")


run(globals())
