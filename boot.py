# Runs at every reset, before main.py. The firmware modules live in /firmware (the codec and
# the other portable modules in /lib, already on sys.path). Kept tiny: nothing here can fail.
import sys

if "/firmware" not in sys.path:
    sys.path.append("/firmware")
