"""pytest setup for CPython host tests: import paths + a tiny `micropython` shim."""

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "host_tests"
# Same roots as MICROPYPATH for the MicroPython suites, plus host tools and the repo root.
_PATHS = (ROOT / "lib", ROOT / "firmware", HERE / "mpy", HERE / "fakes", ROOT / "tools", ROOT)
for _d in reversed(_PATHS):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

try:
    import micropython  # noqa: F401
except ImportError:
    _mp = types.ModuleType("micropython")
    _mp.const = lambda x: x  # type: ignore[attr-defined]
    _mp.native = lambda f: f  # type: ignore[attr-defined]
    _mp.viper = lambda f: f  # type: ignore[attr-defined]
    _mp.mem_info = lambda *a: None  # type: ignore[attr-defined]
    sys.modules["micropython"] = _mp

# host_tests/mpy/ runs under MicroPython (make test), host_tests/fakes/ are device fakes.
collect_ignore_glob = ["mpy/*", "fakes/*"]
