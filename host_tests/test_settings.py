# firmware/settings.py on CPython: the same suite as under MicroPython (host_tests/mpy), run by
# pytest, so a change that breaks the cache fails here too.

import runpy
import sys
from pathlib import Path

SUITE = Path(__file__).parent / "mpy" / "test_settings.py"


def test_settings_suite_on_cpython(capsys):
    sys.path.insert(0, str(SUITE.parent))
    try:
        runpy.run_path(str(SUITE), run_name="settings_suite")
    finally:
        sys.path.remove(str(SUITE.parent))
    assert "settings: 6 passed, 0 failed" in capsys.readouterr().out
