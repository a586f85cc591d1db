# A whole node on fakes, for tests and benchmarks on CPython and MicroPython: the virtual
# MULTICAL behind a fake UART, a fake broker behind the umqtt API, a fake clock and board.

import config
import ticks  # noqa: F401  (the real module must import on both runtimes)
from fake_clock import FakeClock
from fake_mqtt import FakeBroker, FakeMqttClient
from fake_platform import FakePlatform
from fake_uart import FakeUart
from kmp.link import MeterLink
from mqttlink import MqttLink
from node import Node
from virtual_meter import FaultyLine, VirtualMeter

EPOCH_2026 = 1795435200  # 2026-11-23T12:00:00Z

BASE_CONFIG = {
    "node_id": "",
    "mqtt": {"host": "127.0.0.1", "port": 1883},
    # no read budget: these tests drive many cycles a minute apart (tests of the budget set it)
    "meter": {"port": "/dev/null", "read_budget": 0},
    "update_interval": 60,
    "sensors": {
        "heat_energy": {"name": "Heat Energy"},
        "power": {"name": "Heat Power"},
        "temp1": {"name": "Flow Temperature"},
        "temp2": {"name": "Return Temperature"},
        "temp_diff": {"name": "Heat Temperature Difference"},
        "flow": {"name": "Heat Flow"},
        "volume": {"name": "Volume"},
    },
    "custom": [{"name": "E8", "command": "0x0061"}],
}


class Harness:
    def __init__(self, cfg=None, seed=1, byte_ms=None, clock_known=True, buffer_path=None,
                 capacity=672, **line_kw):  # fmt: skip
        self.cfg = config.validate(cfg or BASE_CONFIG, target="host")
        self.clock = FakeClock()
        self.meter = VirtualMeter(seed=seed)
        self.line = FaultyLine(self.meter, seed=seed, **line_kw)
        self.uart = FakeUart(self.clock, self.line, byte_ms=byte_ms)
        self.link = MeterLink(self.uart, clock=self.clock)
        self.broker = FakeBroker()
        self.clients = []
        self.mqtt = MqttLink(self.make_client, self.cfg, self.clock, self.log)
        self.platform = FakePlatform()
        self.logs = []
        self.clock_known = clock_known
        self.buffer = None
        if buffer_path is not None:
            from lazybuffer import LazyBuffer

            self.buffer = LazyBuffer(buffer_path, capacity)
        self.node = Node(self.cfg, self.link, self.mqtt, self.clock, self.wall_time,
                         self.platform, self.log, self.buffer)  # fmt: skip

    def make_client(self, client_id, server, port, user, password, keepalive, tls):
        c = FakeMqttClient(self.broker, client_id, server, port, user, password, keepalive, tls)
        self.clients.append(c)
        del self.clients[:-5]  # the last few only: a soak makes thousands
        return c

    def wall_time(self):
        base = EPOCH_2026 if self.clock_known else 0
        return base + self.clock.now // 1000

    def log(self, text):
        self.logs.append(text)
        if len(self.logs) > 20:  # bounded: a soak must not measure its own log
            self.logs.pop(0)

    def cycle(self, advance_s=60):
        """One read cycle after advance_s seconds of meter and clock time."""
        self.meter.advance(advance_s)
        self.clock.advance(advance_s * 1000)
        self.node.cycle()

    def on(self, leaf):
        """Payloads published on <base>/<node_id>/<leaf>, in order."""
        t = self.topic(leaf)
        return [m[1] for m in self.broker.messages if m[0] == t]

    def topic(self, leaf):
        return "kmp2mqtt/%s/%s" % (self.node.node_id, leaf)
