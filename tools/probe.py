# Sent to the board by `make probe` (mpremote run): a one-shot meter read, see firmware/probe.py.
# Like main.py, this script makes the hardware (the meter's UART) and hands it down.
import sys

if "/firmware" not in sys.path:
    sys.path.append("/firmware")

import machine

import config
import probe

cfg = config.load("config.json", target="esp32")
m = cfg["meter"]
uart = machine.UART(m["uart"], baudrate=1200, bits=8, parity=None, stop=2,
                    rx=m["rx_pin"], tx=m["tx_pin"], timeout=0, rxbuf=512)  # fmt: skip
probe.run(uart, cfg)
