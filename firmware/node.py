# The node: every interval read the configured registers (batched), guard the totals, publish
# state, units, diagnostics and Home Assistant discovery. A reading that cannot be published
# goes to the persistent buffer and is delivered later on the history topic. Hardware and
# clients come in from main.py (ESP32) or host/runtime.py (Linux); nothing here creates them.

import gc
import sys

from budget import ReadBudget, requests_per_read
from guard import TotalsGuard
from kmp.errors import KmpError, NoAnswer, PortError
from mqttlink import FIRMWARE_VERSION
from timefmt import clock_known, iso_utc

# After this many reads in a row without an answer the node reads less often (the optical eye
# is asleep: every try costs the meter's battery), doubling the gap up to an hour.
NO_ANSWER_BACKOFF_AFTER = 3
# Diagnostics go out every DIAG_EVERY cycles, and at once when something a user watches changes
# (errors, the meter answering or not, a backlog): a diag message is the largest allocation of
# a cycle. (A battery wake is one cycle of a fresh node: it always sends them.)
DIAG_EVERY = 5
# Registers judged unsupported are asked for again once a day: the judgement may have been a
# hiccup of the optical link, or the meter was swapped.
RECHECK_UNSUPPORTED_MS = 86400000
# The serial is read again once a day, and when the meter answers after a silence: utilities
# swap meters, and a new one must not wait out the totals guard or keep the old serial.
RECHECK_IDENTITY_S = 86400
# A cycle's MQTT work (connect, state, discovery, history, diag) may take this share of the
# interval, in thousandths; what is left then waits for the next cycle, so reads stay on time.
MQTT_SHARE_PER_MILLE = 750
# last_error is at most this long (HA shows 255 characters of a state).
_ERROR_CHARS = 240
_TOTAL = 0  # kmp.registers.TOTAL (a test keeps them equal)
_MEASURE = 1  # kmp.registers.MEASURE


def default_node_id(board_id):
    """The node id when config.json leaves it empty: the board's own (the ESP32's MAC, or a
    host's id), so it is there from the first boot, whatever the meter does."""
    return "kmp2mqtt_%s" % board_id


def forget_modules(*names):
    """Drop modules nobody needs any more, so the GC can free their code and tables (RAM on the
    ESP32); a later import loads them again."""
    for name in names:
        if sys.modules.pop(name, None) is not None and "." in name:
            pkg, _, leaf = name.rpartition(".")
            parent = sys.modules.get(pkg)
            if parent is not None and leaf in parent.__dict__:
                delattr(parent, leaf)


def forget_new_modules(before):
    """Drop every module loaded since before (a set of sys.modules names): what a rare task
    (discovery, a command, the backlog) brought in leaves RAM with it."""
    forget_modules(*[name for name in sys.modules if name not in before])


class Node:
    def __init__(self, cfg, link, mqtt, clock, wall_time, platform, log=print, buffer=None):
        """cfg: validated config (firmware/config.py); link: kmp.link.MeterLink; mqtt: MqttLink;
        clock: ticks API; wall_time(): seconds (time.time); platform: board facts (boots,
        rssi(), free_heap(), feed() the watchdog, network_up()); buffer: a ReadingBuffer for
        readings that could not be published (None: they are counted as lost)."""
        self.cfg = cfg
        self.link = link
        self.mqtt = mqtt
        self.clock = clock
        self.wall_time = wall_time
        self.platform = platform
        self.log = log
        self.buffer = buffer
        self.guard = TotalsGuard()
        self.started = clock.ticks_ms()
        self._recheck_at = clock.ticks_add(self.started, RECHECK_UNSUPPORTED_MS)
        self.uptime_base_s = 0  # seconds lived before this boot (deep sleep: from RTC memory)
        # (id, rid, name, kind) for everything configured, in order; the register table is
        # needed only for this.
        from kmp import registers

        self.sensors = []
        for sid, rid, name in cfg["registers"]:
            entry = registers.by_rid(rid)
            self.sensors.append((sid, rid, name, entry[2] if entry else _MEASURE))
        forget_modules("kmp.registers")
        self.rids = [s[1] for s in self.sensors]
        self.totals = [s[0] for s in self.sensors if s[3] == _TOTAL]  # guarded, never go back
        self.budget = ReadBudget(cfg["meter"]["read_budget"])
        self.per_read = requests_per_read(len(self.rids))
        self._pace_told = False  # the log said the budget slows the reads (once a window)
        self.meter_type = None
        self.sw_revision = None
        self.serial = None
        self.identity_at = None  # uptime s of the last serial read (None: not read yet)
        self._identified = False
        self.meter_swaps = 0
        self.previous_serial = None
        # Known before the meter ever answers (a head not aligned yet must still be reported),
        # and never changed by what the meter says: one Home Assistant device from the start.
        self.node_id = cfg["node_id"] or default_node_id(platform.board_id)
        self.units = {}  # id -> (unit_code, exponent) as the meter reports them
        self.discovery_sent = False
        self.announce_progress = None  # (fingerprint, messages out) of a cut-short announce
        self.ha_status = None  # Home Assistant's status topic, when its birth is listened for
        self.pending = None  # (values, wall seconds or None, uptime s): read, not yet published
        self.last_state = None  # (values, time ISO or None) of the newest reading
        # commands (cmd topic)
        self.interval = cfg["update_interval"]
        self.read_requested = False
        self.stay_awake = False
        self.commands = 0
        self.command_errors = 0
        self.last_command = None
        # counters for diag
        self.cycles = 0
        self.read_failures = 0
        self.meter_reachable = None
        self.no_answer_streak = 0
        self.skip_reads = 0
        self.last_cycle_ms = None  # the last cycle's length; none has ended yet
        self.last_error = None
        self.errors = 0
        self.buffered = 0
        self.history_sent = 0
        self.lost = 0  # readings neither published nor buffered (no buffer, flash error)
        self._diag_seen = None  # what the last diag said about the things that matter
        subs = (self.topic("cmd"),)
        mq = cfg["mqtt"]
        if mq["discovery"] and not cfg["battery"]["deep_sleep"]:
            # HA says "online" here when it (re)starts: a broker that lost the retained
            # configs gets them again. (A sleeping node cannot listen: its configs are retained.)
            self.ha_status = mq["discovery_prefix"] + "/status"
            subs += (self.ha_status,)
        mqtt.configure(self.topic("status"), subs)
        mqtt.on_message = self.on_command

    # -- topics --------------------------------------------------------------------------------

    def topic(self, leaf):
        return "%s/%s/%s" % (self.cfg["mqtt"]["base_topic"], self.node_id, leaf)

    def uptime_s(self):
        return (
            self.uptime_base_s + self.clock.ticks_diff(self.clock.ticks_ms(), self.started) // 1000
        )

    # -- pace (firmware/budget.py) -------------------------------------------------------------

    def paced_interval(self):
        """Seconds between reads outside the setup window: the interval (configured or set by
        a command), or longer where the meter's read budget says so. Discovery's expire_after
        follows it."""
        return self.budget.interval_s(self.interval, self.per_read, self.cfg["align"])

    def next_interval(self):
        """Seconds to the next read: the interval in the setup window, else paced."""
        if self.budget.in_setup(self.uptime_s()):
            return self.interval
        return self.paced_interval()

    def _tell_pace(self):
        """Once the setup window is over, say once (log and diag) if the budget slows reads."""
        if self.budget.in_setup(self.uptime_s()):
            self._pace_told = False
            return
        paced = self.paced_interval()
        if self._pace_told or paced <= self.interval:
            return
        self._pace_told = True
        self.log("meter: read budget %d exchanges a day (meter.read_budget): reading every %d s, "
                 "not every %d s; set meter.read_budget to 0 for a mains-powered meter, or "
                 "send read_now for 15 minutes of reads every %d s"
                 % (self.budget.per_day, paced, self.interval, self.interval))  # fmt: skip

    # -- identity ------------------------------------------------------------------------------

    def identify(self):
        """Read type and serial; once at start and again while it has failed."""
        if self.serial is not None:
            return True
        try:
            self.meter_type, self.sw_revision = self.link.get_type()
            self.serial = self.link.get_serial()
            self.identity_at = self.uptime_s()
            self._identified = True  # read just now: no check of it this cycle
        except KmpError as e:
            return self._identity_failed(e)
        self.set_identity(self.meter_type, self.sw_revision, self.serial)
        return True

    def same_meter(self):
        """True unless a due check of the serial finds the meter silent. Due once a day and on
        the first read after a silence; a new serial is a swapped meter: its identity replaces
        the old one's (discovery again), and its totals start afresh."""
        now = self.uptime_s()
        if self._identified:
            self._identified = False
            return True
        if not self._identity_due(now):
            return True
        try:
            serial = self.link.get_serial()
            if serial != self.serial:
                meter_type, sw_revision = self.link.get_type()
        except KmpError as e:
            return self._identity_failed(e)
        self.identity_at = now
        if serial != self.serial:
            self.meter_swaps += 1
            self.previous_serial = self.serial
            self.log("meter: replaced: serial %d -> %d; its totals start afresh"
                     % (self.serial, serial))  # fmt: skip
            self.guard.forget()
            self.units = {}  # announced again from what the new meter reports
            self.set_identity(meter_type, sw_revision, serial)
        return True

    def _identity_failed(self, e):
        """An identity read that failed: counted and told like a failed read; False."""
        self._error("identity: %s" % e)
        self._meter_answered(not isinstance(e, (NoAnswer, PortError)), isinstance(e, PortError))
        return False

    def _identity_due(self, now):
        if self.serial is None:
            return False  # identify() reads it
        if self.identity_at is None:
            self.identity_at = now  # known from RTC memory without its time: from now
        return self.meter_reachable is False or now - self.identity_at >= RECHECK_IDENTITY_S

    def set_identity(self, meter_type, sw_revision, serial):
        """Known identity (read now, or kept in RTC memory across deep sleep). The device
        announced to HA gets the meter's model and serial: discovery goes out again."""
        self.meter_type, self.sw_revision, self.serial = meter_type, sw_revision, serial
        self.discovery_sent = False
        self.log("meter: type 0x%04X sw %s serial %d" % (meter_type, sw_revision, serial))

    # -- one cycle -----------------------------------------------------------------------------

    def read(self):
        """Read the meter; returns {id: exact decimal text or None}."""
        res = self.link.read(self.rids)
        self._meter_answered(not (res.no_answer or res.port_error), res.port_error)
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
            if kind == _TOTAL and not self.guard.accept(sid, reg.mantissa, reg.exponent):
                self.log("guard: %s %s lower than last published, held back" % (sid, reg.text()))
                values[sid] = None
                continue
            values[sid] = reg.text()
        return values

    def _meter_answered(self, answered, port_error=False):
        self.meter_reachable = answered
        if answered:
            self.no_answer_streak = 0
            return
        if port_error:
            # The head is unplugged or the UART failed: asking costs the meter nothing, and
            # the next cycle must find the head as soon as it is back. No backoff.
            return
        self.no_answer_streak += 1
        if self.no_answer_streak >= NO_ANSWER_BACKOFF_AFTER:
            # Skip 1, 2, 4, ... cycles, at most an hour's worth, before the next try.
            most = max(1, 3600 // self.paced_interval())
            shift = min(16, self.no_answer_streak - NO_ANSWER_BACKOFF_AFTER)  # no bigints
            self.skip_reads = min(most, 1 << shift)

    def take_reading(self):
        """Read the meter now (unless backing off or out of budget); the reading waits in
        self.pending."""
        if self.skip_reads > 0 and not self.read_requested:
            self.skip_reads -= 1
            return False
        now = self.uptime_s()
        if self.read_requested:
            self.budget.open_setup(now)  # someone is watching: 15 minutes of quick reads
        self.read_requested = False
        need = self.per_read + (2 if self.serial is None else 1 if self._identity_due(now) else 0)
        if not self.budget.allows(need, now):
            self.budget.held += 1
            self.log("meter: read budget used up (%d of %d exchanges in 24 h): this read waits"
                     % (self.budget.used(now), self.budget.per_day))  # fmt: skip
            return False
        link = self.link
        before = link.requests
        if self.budget.per_day and not self.budget.in_setup(now):
            # a hard stop for retries and re-asks: what is left of the budget, no more
            link.request_cap = before + self.budget.per_day - self.budget.used(now)
        try:
            return self._read_now()
        finally:
            link.request_cap = None
            self.budget.count(link.requests - before, now)

    def _read_now(self):
        if self.identify() and self.same_meter():
            t = self.clock.ticks_ms()
            if self.clock.ticks_diff(t, self._recheck_at) >= 0:
                self.link.forget_unsupported()
                self._recheck_at = self.clock.ticks_add(t, RECHECK_UNSUPPORTED_MS)
            self.platform.feed()
            values = self.read()
            self.platform.feed()
        else:  # the meter said nothing yet (or the port failed): a reading of nulls says so
            values = {}
            for s in self.sensors:
                values[s[0]] = None
        now = self.wall_time()
        self.pending = (values, int(now) if clock_known(now) else None, self.uptime_s())
        self.last_state = (values, self.pending[1])
        return True

    def cycle(self):
        """Read, publish, report. Never raises: a failed cycle is counted and the loop goes on."""
        t0 = self.clock.ticks_ms()
        self.cycles += 1
        mqtt = self.mqtt
        try:
            self.take_reading()
            self._tell_pace()
            # MQTT gets most of the interval, not more: a broker that acknowledges slowly
            # must not hold up the next read. What does not go out waits for the next cycle.
            mqtt.until = self.clock.ticks_add(t0, self.interval * MQTT_SHARE_PER_MILLE)
            deferred = mqtt.deferred
            self.publish()
            if mqtt.deferred != deferred:
                self.log("mqtt: the broker is slow: the rest waits for the next cycle (a "
                         "reading not out is buffered)")  # fmt: skip
        except Exception as e:  # MemoryError included: count it, go on
            self._error("cycle: %s: %s" % (type(e).__name__, e))
            if self.pending is not None:
                self.keep(self.pending)
                self.pending = None
        finally:
            mqtt.until = None
        self.last_cycle_ms = self.clock.ticks_diff(self.clock.ticks_ms(), t0)
        gc.collect()

    # -- publishing ----------------------------------------------------------------------------

    def publish(self):
        """Publish the pending reading, buffered history and diagnostics. A reading that does
        not reach the broker is kept in the buffer. True when everything went out."""
        # The reading stays in self.pending until it is on the broker or in the buffer: if
        # anything below raises (MemoryError loading discovery, say), cycle() keeps it.
        reading = self.pending
        ok = self._connect()
        if ok and reading is not None:
            ok = self._send_state(reading)  # first: the reading is what matters most
        self.pending = None
        if not ok and reading is not None:
            self.keep(reading)
        if ok:
            ok = self._announce()
        if ok:
            ok = self._send_history()
        if ok:
            ok = self._send_diag()
        return ok

    def keep(self, reading):
        """Into the persistent buffer, for the history topic later."""
        values, when, uptime = reading
        if self.buffer is None:
            self.lost += 1
            return
        try:
            from buffer import Reading

            self.buffer.append(Reading(values, when, uptime))
            self.buffered += 1
        except Exception as e:  # flash full or failing: count it, never crash the loop
            self.lost += 1
            self._error("buffer: %s: %s" % (type(e).__name__, e))

    def _connect(self):
        return self.platform.network_up() and self.mqtt.connect(self.node_id)

    def _announce(self):
        if self.discovery_sent:
            return True
        # Before the meter has answered this announces the diagnostic entities (Meter not
        # answering, Last error, ...); the sensors follow once their units are known.
        before = set(sys.modules)
        import announce

        try:
            return announce.announce(self)
        finally:
            # Discovery's code and tables are needed again only when the units change.
            forget_new_modules(before)

    def _send_state(self, reading):
        import payloads

        values, when, uptime = reading
        topic, payload = payloads.state_message(
            self.cfg["mqtt"]["base_topic"],
            self.node_id,
            values,
            None if when is None else iso_utc(when),
            uptime,  # marks a reading without a clock (as on history), to order and match it
        )
        # QoS 1: only a PUBACK tells us the reading arrived; otherwise it goes to the buffer.
        return self.mqtt.publish(topic, payload, True, 1)

    def _send_history(self):
        """Deliver buffered readings (firmware/history.py), loaded only while some wait."""
        if self.buffer is None or not self.buffer.pending():
            return True
        before = set(sys.modules)
        import history

        try:
            return history.send(self)
        finally:
            if not self.buffer.pending():
                forget_modules("history")  # also when an earlier cycle (longer backlog) loaded it
                forget_new_modules(before)

    def _send_diag(self):
        import payloads

        seen = (self.errors, self.meter_reachable, self.lost, self.commands, self.command_errors,
                self.mqtt.connects, self.guard.held, self.interval, self.next_interval(),
                self.budget.held, self.meter_swaps,
                self.buffer is not None and self.buffer.pending() > 0)  # fmt: skip
        if seen == self._diag_seen and self.cycles % DIAG_EVERY != 1:
            return True  # nothing new; the periodic one keeps HA's diagnostics fresh

        topic, payload = payloads.diag_message(self.cfg["mqtt"]["base_topic"], self.node_id,
                                               self.diag())  # fmt: skip
        if not self.mqtt.publish(topic, payload, True, 0):
            return False  # (a change not told yet is told next cycle)
        self._diag_seen = seen
        return True

    def diag(self):
        p = self.platform
        buf = self.buffer
        now = self.uptime_s()
        return {
            "firmware": FIRMWARE_VERSION,
            "uptime_s": self.uptime_s(),
            "boots": p.boots,
            "rssi": p.rssi(),
            "free_heap": p.free_heap(),
            "interval_s": self.interval,
            "cycles": self.cycles,
            "cycle_ms": self.last_cycle_ms,
            "errors": self.errors,
            "last_error": self.last_error,
            "meter_reachable": self.meter_reachable,
            "no_answer_streak": self.no_answer_streak,
            "read_failures": self.read_failures,
            "totals_held": self.guard.held,
            "meter_swaps": self.meter_swaps,
            "previous_serial": self.previous_serial,
            "unsupported": sorted(self.link.unsupported),
            "mqtt_connects": self.mqtt.connects,
            "mqtt_failures": self.mqtt.failures,
            "buffered": 0 if buf is None else buf.pending(),
            "buffer_dropped": 0 if buf is None else buf.dropped,
            "buffer_corrupt": 0 if buf is None else buf.corrupt,
            "history_sent": self.history_sent,
            "lost": self.lost,
            "commands": self.commands,
            "command_errors": self.command_errors,
            "link": self.link.counters(),
            "read_budget": self.budget.per_day,
            "exchanges_24h": self.budget.exchanges(now),
            "budget_used_24h": self.budget.used(now),
            "budget_held": self.budget.held,
            "read_interval_s": self.next_interval(),
            "setup_left_s": self.budget.setup_left_s(now),
        }

    # -- commands (cmd topic) ------------------------------------------------------------------

    def on_command(self, topic, msg):
        """A JSON command on the cmd topic (firmware/commands.py), or Home Assistant's birth
        message. Commands are rare: their code leaves RAM again afterwards."""
        ha = self.ha_status
        if ha is not None and (topic == ha or topic == ha.encode()):
            if msg == b"online":
                self.discovery_sent = False  # announce again with the next cycle, all of it
                self.announce_progress = None
            return True  # not a command: neither counted nor an error
        before = set(sys.modules)
        try:
            import commands

            return commands.handle(self, msg)
        except Exception as e:  # MemoryError on the board: never out into the MQTT session
            self.command_errors += 1
            self._error("command: %s" % type(e).__name__)
            return False
        finally:
            forget_new_modules(before)

    def _error(self, text):
        self.errors += 1
        if len(text) > _ERROR_CHARS:  # bounded in diag and the log, whatever caused it
            text = text[:_ERROR_CHARS] + "..."
        self.last_error = text
        self.log(text)
