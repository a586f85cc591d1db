# The node: every interval read the configured registers (batched), guard the totals, publish
# state, units, diagnostics and Home Assistant discovery. Hardware and clients come in from
# main.py (ESP32) or host/runtime.py (Linux); nothing here creates them.

import gc

from guard import TotalsGuard
from kmp import registers
from kmp.errors import KmpError
from mqttlink import FIRMWARE_VERSION
from timefmt import clock_known, iso_utc


class Node:
    def __init__(self, cfg, link, mqtt, clock, wall_time, platform, log=print):
        """cfg: validated config (firmware/config.py); link: kmp.link.MeterLink; mqtt: MqttLink;
        clock: ticks API; wall_time(): seconds (time.time); platform: board facts (boots,
        rssi(), free_heap(), feed() the watchdog, network_up())."""
        self.cfg = cfg
        self.link = link
        self.mqtt = mqtt
        self.clock = clock
        self.wall_time = wall_time
        self.platform = platform
        self.log = log
        self.guard = TotalsGuard()
        self.started = clock.ticks_ms()
        # (id, rid, name, kind) for everything configured, in order.
        self.sensors = []
        for sid, rid, name in cfg["registers"]:
            entry = registers.by_rid(rid)
            self.sensors.append((sid, rid, name, entry[3] if entry else registers.MEASURE))
        self.rids = [s[1] for s in self.sensors]
        self.meter_type = None
        self.sw_revision = None
        self.serial = None
        self.node_id = cfg["node_id"] or None
        self.units = {}  # id -> (unit_code, exponent) as the meter reports them
        self.discovery_sent = False
        self.cycles = 0
        self.read_failures = 0
        self.meter_reachable = None
        self.last_cycle_ms = 0
        self.last_error = None
        self.errors = 0
        self.last_state = None

    # -- topics --------------------------------------------------------------------------------

    def topic(self, leaf):
        return "%s/%s/%s" % (self.cfg["mqtt"]["base_topic"], self.node_id, leaf)

    # -- identity ------------------------------------------------------------------------------

    def identify(self):
        """Read type and serial; once at start and again while it has failed."""
        if self.serial is not None:
            return True
        try:
            self.meter_type, self.sw_revision = self.link.get_type()
            self.serial = self.link.get_serial()
        except KmpError as e:
            self._error("identity: %s" % e)
            return False
        if self.node_id is None:
            self.node_id = "kamstrup_%d" % self.serial
        self.mqtt.configure(self.topic("status"), (self.topic("cmd"),))
        self.log("meter: type 0x%04X sw %s serial %d" % (self.meter_type, self.sw_revision,
                                                         self.serial))  # fmt: skip
        return True

    # -- one cycle -----------------------------------------------------------------------------

    def read(self):
        """Read the meter; returns {id: exact decimal text or None}."""
        res = self.link.read(self.rids)
        self.meter_reachable = not res.no_answer
        if res.error is not None:
            self.read_failures += 1
            self._error("meter: %s" % res.error)
        values = {}
        for sid, rid, _, kind in self.sensors:
            reg = res.values.get(rid)
            if reg is None:
                values[sid] = None
                continue
            if (reg.unit, reg.exponent) != self.units.get(sid):
                self.units[sid] = (reg.unit, reg.exponent)
                self.discovery_sent = False  # units decide HA's unit strings: announce again
            if kind == registers.TOTAL and not self.guard.accept(sid, reg.mantissa, reg.exponent):
                self.log("guard: %s %s lower than last published, held back" % (sid, reg.text()))
                values[sid] = None
                continue
            values[sid] = reg.text()
        return values

    def cycle(self):
        """Read, publish, report. Never raises: a failed cycle is counted and the loop goes on."""
        t0 = self.clock.ticks_ms()
        self.cycles += 1
        try:
            if self.identify():
                self.platform.feed()
                values = self.read()
                self.platform.feed()
                now = self.wall_time()
                self.last_state = (values, iso_utc(now) if clock_known(now) else None)
                self.publish()
        except Exception as e:  # MemoryError included: count it, go on
            self._error("cycle: %s: %s" % (type(e).__name__, e))
        self.last_cycle_ms = self.clock.ticks_diff(self.clock.ticks_ms(), t0)
        gc.collect()

    def publish(self):
        """Publish what the last cycle read; False when the network or broker is down."""
        import payloads

        if self.node_id is None or not self.platform.network_up():
            return False
        if not self.mqtt.connect(self.node_id):
            return False
        mq = self.cfg["mqtt"]
        base = mq["base_topic"]
        if not self.discovery_sent and self.units:
            sensors = self.descriptors()
            if mq["discovery"]:
                for topic, payload in payloads.discovery_messages(
                    self.node_id,
                    base,
                    mq["discovery_prefix"],
                    self.device_info(),
                    sensors,
                    self.cfg["update_interval"],
                    FIRMWARE_VERSION,
                ):
                    if not self.mqtt.publish(topic, payload, True, 1):
                        return False
            topic, payload = payloads.units_message(base, self.node_id, sensors)
            if not self.mqtt.publish(topic, payload, True, 1):
                return False
            self.discovery_sent = True
        if self.last_state is not None:
            values, when = self.last_state
            topic, payload = payloads.state_message(base, self.node_id, values, when)
            if not self.mqtt.publish(topic, payload, True, 0):
                return False
        topic, payload = payloads.diag_message(base, self.node_id, self.diag())
        return self.mqtt.publish(topic, payload, True, 0)

    def descriptors(self):
        """(id, name, rid, kind, unit_code, exponent) per sensor, units as the meter sent them
        (None until a register has been read)."""
        out = []
        for sid, rid, name, kind in self.sensors:
            unit = self.units.get(sid)
            code, exponent = unit if unit else (None, None)
            out.append((sid, name, rid, kind, code, exponent))
        return out

    def device_info(self):
        from kmp.messages import meter_type_name

        return {
            "model": None if self.meter_type is None else meter_type_name(self.meter_type),
            "serial": self.serial,
            "sw_version": self.sw_revision,
        }

    def diag(self):
        p = self.platform
        return {
            "firmware": FIRMWARE_VERSION,
            "uptime_s": self.clock.ticks_diff(self.clock.ticks_ms(), self.started) // 1000,
            "boots": p.boots,
            "rssi": p.rssi(),
            "free_heap": p.free_heap(),
            "cycles": self.cycles,
            "cycle_ms": self.last_cycle_ms,
            "errors": self.errors,
            "last_error": self.last_error,
            "meter_reachable": self.meter_reachable,
            "read_failures": self.read_failures,
            "totals_held": self.guard.held,
            "unsupported": sorted(self.link.unsupported),
            "mqtt_connects": self.mqtt.connects,
            "link": self.link.counters(),
        }

    def _error(self, text):
        self.errors += 1
        self.last_error = text
        self.log(text)
