# Runs at every reset, before main.py. The firmware modules live in /firmware (the codec and
# the other portable modules in /lib, already on sys.path). With a ROMFS image (make
# flash-romfs, on a MicroPython build with a ROMFS partition) they are in /rom/firmware and
# /rom/lib (the firmware puts /rom/lib on sys.path itself), ahead of any copies left in
# /firmware. Kept tiny: nothing here can fail.
import os
import sys

try:
    os.stat("/rom/firmware")
    if "/rom/firmware" not in sys.path:
        sys.path.append("/rom/firmware")
except OSError:
    pass  # no ROMFS mounted, or an image without firmware/
if "/firmware" not in sys.path:
    sys.path.append("/firmware")
