# kmp2mqtt entry point. On the ESP32 MicroPython runs this after boot.py; on a Linux host:
#   .venv/bin/python main.py --config FILE
import sys

if sys.implementation.name == "micropython":
    import board

    board.main()
else:
    # (string operations, not os.path: this file is type-checked against MicroPython's stubs)
    _root = __file__.rpartition("/")[0] or "."
    for _p in ("/lib", "/firmware", ""):
        sys.path.insert(0, _root + _p)
    from host.runtime import main

    sys.exit(main(sys.argv[1:]))
