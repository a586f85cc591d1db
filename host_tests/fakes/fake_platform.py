# Board facts for a node on fakes (the role of firmware/device.Esp32Platform): a fixed RSSI, the
# heap as MicroPython reports it, a counted watchdog and a network switch.

import gc


class FakePlatform:
    def __init__(self):
        self.boots = 1
        self.board_id = "246f280a1b2c"  # an ESP32's MAC in hex (machine.unique_id())
        self.feeds = 0
        self.network = True
        self.clock_keeps = 0

    def rssi(self):
        return -61

    def free_heap(self):
        return gc.mem_free() if hasattr(gc, "mem_free") else None

    def feed(self):
        self.feeds += 1

    def network_up(self):
        return self.network

    def keep_clock(self):
        self.clock_keeps += 1
