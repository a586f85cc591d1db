# A fake `network` (WLAN) for board tests: connects at once unless DOWN is set.

STA_IF = 0
DOWN = False
CONNECTS = []  # kwargs of every connect()


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False
        self._connected = False

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def isconnected(self):
        return self._connected

    def connect(self, ssid=None, key=None, bssid=None):
        CONNECTS.append({"ssid": ssid, "bssid": bssid})
        self._connected = not DOWN

    def disconnect(self):
        self._connected = False

    def scan(self):
        return [(b"home", b"\x02\x11\x22\x33\x44\x55", 6, -60, 3, False),
                (b"other", b"\x02\x00\x00\x00\x00\x01", 1, -40, 3, False)]  # fmt: skip

    def status(self, what=None):
        return -58 if what == "rssi" else 1010

    def ifconfig(self, cfg=None):
        return ("192.168.1.50", "255.255.255.0", "192.168.1.1", "192.168.1.1")
