# kmp2mqtt entry point. On the ESP32 MicroPython runs this after boot.py; on a Linux host:
#   .venv/bin/python main.py --config FILE
import sys

if sys.implementation.name == "micropython":
    import board

    board.main()
else:
    import os

    _root = os.path.dirname(os.path.abspath(__file__))
    for _p in ("lib", "firmware", ""):
        sys.path.insert(0, os.path.join(_root, _p))
    from host.runtime import main

    sys.exit(main(sys.argv[1:]))
