# Sent to the board by `make probe` (mpremote run): a one-shot meter read, see firmware/probe.py.
import sys

if "/firmware" not in sys.path:
    sys.path.append("/firmware")

import probe

probe.main()
