# A virtual Kamstrup MULTICAL 403 for development, tests, the demo and benchmarks.
#
# Portable core: runs under CPython 3.11 and MicroPython 1.29 (no os, threading, serial,
# dataclasses, typing; own PRNG so a seed gives the same values on both). tools/kmpsim.py puts
# it on a pty for host programs; test fakes can put it behind a fake UART.
#
#   VirtualMeter  answers GetType, GetSerialNo and GetRegister like a meter (silence on anything
#                 it would not answer), with values that evolve with advance()
#   FaultyLine    the optical link in front of it: echo, latency, stray 0x00, corruption, sleep
#   RequestSplitter  cuts a master's byte stream into request frames (for a serial front end)
#
# Values are integer mantissas with decimal exponents, as the meter sends them; physics is done
# in integers (W, l/h, 0.01 degC, milliseconds) so CPython and MicroPython agree to the digit.

from kmp import frame, messages, strict, units
from kmp.errors import KmpError
from kmp.value import format_decimal

# -- helpers ---------------------------------------------------------------------------------


def wire_time_ms(nbytes, baud=1200, bits_per_byte=11):
    """Whole milliseconds (rounded up) nbytes take on the wire: 8N2 is 11 bits a byte."""
    return (nbytes * bits_per_byte * 1000 + baud - 1) // baud


class XorShift32:
    """Tiny deterministic PRNG (xorshift32): identical sequences on CPython and MicroPython,
    whose `random` module differs between ports."""

    def __init__(self, seed=1):
        # Scramble the seed (Knuth's multiplicative hash) so seeds 1, 2, 3 do not start with
        # nearly equal states; xorshift must never hold 0.
        s = ((seed & 0xFFFFFFFF) * 2654435761 + 0x6D2B79F5) & 0xFFFFFFFF
        self.state = s or 0x9E3779B9
        for _ in range(8):
            self.next()

    def next(self):
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x

    def randint(self, a, b):
        """Integer in a..b inclusive (the modulo bias is irrelevant here)."""
        return a + self.next() % (b - a + 1)

    def chance(self, ppm):
        """True with probability ppm / 1e6."""
        return self.next() % 1000000 < ppm


def _ppm(p):
    # Probabilities become integer parts per million once, so the comparison itself is exact on
    # both interpreters (ESP32 MicroPython floats are single precision).
    if not 0 <= p <= 1:
        raise ValueError("probability: expected 0..1, got %r" % (p,))
    return int(p * 1000000 + 0.5)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    """(year, month, day) of days since 1970-01-01."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


# -- register ids and encodings --------------------------------------------------------------

E1 = 0x003C  # heat energy
E3 = 0x003F  # cooling energy
V1 = 0x0044  # volume
FLOW = 0x004A  # l/h
POWER = 0x0050  # kW
T1 = 0x0056
T2 = 0x0057
TDIFF = 0x0059
E8 = 0x0061  # m3 x T1
INFO = 0x0063
E9 = 0x006E  # m3 x T2
INFO_EVENTS = 0x0071
MAX_FLOW_Y_DATE, MAX_FLOW_Y, MIN_FLOW_Y_DATE, MIN_FLOW_Y = 0x007B, 0x007C, 0x007D, 0x007E
MAX_POWER_Y_DATE, MAX_POWER_Y, MIN_POWER_Y_DATE, MIN_POWER_Y = 0x007F, 0x0080, 0x0081, 0x0082
MAX_FLOW_M_DATE, MAX_FLOW_M, MIN_FLOW_M_DATE, MIN_FLOW_M = 0x008A, 0x008B, 0x008C, 0x008D
MAX_POWER_M_DATE, MAX_POWER_M, MIN_POWER_M_DATE, MIN_POWER_M = 0x008E, 0x008F, 0x0090, 0x0091
AVG_T1_Y, AVG_T2_Y, AVG_T1_M, AVG_T2_M = 0x0092, 0x0093, 0x0095, 0x0096
E1_HIGH_RES = 0x010A  # Wh, digits above 10^7 dropped like a real 403
SERIAL_NO = 0x03E9
CLOCK = 0x03EA
DATE = 0x03EB
HOURS = 0x03EC

ENERGY_GJ = 8
ENERGY_KWH = 2
ENERGY_MWH = 3

# Every register the model answers, in a fixed order (MicroPython dicts are unordered).
DEFAULT_REGISTERS = (
    E1, E3, V1, FLOW, POWER, T1, T2, TDIFF, E8, INFO, E9, INFO_EVENTS,
    MAX_FLOW_Y_DATE, MAX_FLOW_Y, MIN_FLOW_Y_DATE, MIN_FLOW_Y,
    MAX_POWER_Y_DATE, MAX_POWER_Y, MIN_POWER_Y_DATE, MIN_POWER_Y,
    MAX_FLOW_M_DATE, MAX_FLOW_M, MIN_FLOW_M_DATE, MIN_FLOW_M,
    MAX_POWER_M_DATE, MAX_POWER_M, MIN_POWER_M_DATE, MIN_POWER_M,
    AVG_T1_Y, AVG_T2_Y, AVG_T1_M, AVG_T2_M,
    E1_HIGH_RES, SERIAL_NO, CLOCK, DATE, HOURS,
)  # fmt: skip

# Fixed encodings (unit, NoB, exponent) as a 40x sends them: NoB 2 for instantaneous values
# (real capture: T1 `25 02 42`), NoB 4 for totals, identity and time, NoB 1 for a small counter.
# The energy registers E1/E3 depend on the configured unit and are added per meter.
_KW, _DEGC, _K, _L, _M3, _LPH, _M3C = 22, 37, 38, 39, 40, 41, 43
_FLOW_ENC = (_LPH, 2, 0)
_POWER_ENC = (_KW, 2, -1)
_TEMP_ENC = (_DEGC, 2, -2)
_DATE_ENC = (units.DATE_YYMMDD, 4, 0)
ENCODINGS = {
    V1: (_M3, 4, -2),
    FLOW: _FLOW_ENC,
    POWER: _POWER_ENC,
    T1: _TEMP_ENC,
    T2: _TEMP_ENC,
    TDIFF: (_K, 2, -2),
    E8: (_M3C, 4, 0),
    E9: (_M3C, 4, 0),
    INFO: (0, 2, 0),
    INFO_EVENTS: (0, 1, 0),
    MAX_FLOW_Y_DATE: _DATE_ENC,
    MAX_FLOW_Y: _FLOW_ENC,
    MIN_FLOW_Y_DATE: _DATE_ENC,
    MIN_FLOW_Y: _FLOW_ENC,
    MAX_POWER_Y_DATE: _DATE_ENC,
    MAX_POWER_Y: _POWER_ENC,
    MIN_POWER_Y_DATE: _DATE_ENC,
    MIN_POWER_Y: _POWER_ENC,
    MAX_FLOW_M_DATE: _DATE_ENC,
    MAX_FLOW_M: _FLOW_ENC,
    MIN_FLOW_M_DATE: _DATE_ENC,
    MIN_FLOW_M: _FLOW_ENC,
    MAX_POWER_M_DATE: _DATE_ENC,
    MAX_POWER_M: _POWER_ENC,
    MIN_POWER_M_DATE: _DATE_ENC,
    MIN_POWER_M: _POWER_ENC,
    AVG_T1_Y: _TEMP_ENC,
    AVG_T2_Y: _TEMP_ENC,
    AVG_T1_M: _TEMP_ENC,
    AVG_T2_M: _TEMP_ENC,
    E1_HIGH_RES: (1, 4, 0),
    SERIAL_NO: (0x33, 4, 0),
    CLOCK: (units.CLOCK, 4, 0),
    DATE: _DATE_ENC,
    HOURS: (46, 4, 0),
}

# Energy unit code -> (exponent, accumulator units per mantissa step). The accumulator holds
# W*ms (mJ): 0.001 GJ = 1 MJ = 10^9 mJ; 1 kWh and 0.001 MWh = 3.6 * 10^9 mJ.
_ENERGY_SCALES = {
    ENERGY_GJ: (-3, 1000000000),
    ENERGY_KWH: (0, 3600000000),
    ENERGY_MWH: (-3, 3600000000),
}

# Measurements change on a fixed grid of simulated time, so advance(10) twice equals
# advance(20) once; totals integrate exactly in between.
TICK_MS = 5000
_MS_PER_H = 3600000
# Power [W] = flow [l/h] / 3600 * 4180 J/(kg K) * dT [K], with dT in 0.01 K:
# flow * 4180 * dT_centi / 360000 (water taken as 1 kg/l; a real meter uses its k-factor).
_POWER_DIV = 360000
# (l/h)*ms*0.01 degC per m3*degC: 3600000 ms/h * 1000 l/m3 * 100.
_M3C_DIV = _MS_PER_H * 100000


class _Period:
    """Max/min flow and power with their dates, and time-weighted T1/T2 averages, for the
    current year or month (kept from the simulation start: the meter has no older history)."""

    def __init__(self, flow, power, t1, t2, date):
        self.max_flow = self.min_flow = flow
        self.max_flow_date = self.min_flow_date = date
        self.max_power = self.min_power = power
        self.max_power_date = self.min_power_date = date
        self.t1 = t1
        self.t2 = t2
        self.sum_t1 = 0
        self.sum_t2 = 0
        self.weight = 0

    def sample(self, flow, power, date):
        if flow > self.max_flow:
            self.max_flow, self.max_flow_date = flow, date
        if flow < self.min_flow:
            self.min_flow, self.min_flow_date = flow, date
        if power > self.max_power:
            self.max_power, self.max_power_date = power, date
        if power < self.min_power:
            self.min_power, self.min_power_date = power, date

    def integrate(self, t1, t2, dt):
        self.sum_t1 += t1 * dt
        self.sum_t2 += t2 * dt
        self.weight += dt

    def avg_t1(self):
        return self.sum_t1 // self.weight if self.weight else self.t1

    def avg_t2(self):
        return self.sum_t2 // self.weight if self.weight else self.t2


# -- the meter -------------------------------------------------------------------------------


class VirtualMeter:
    """A MULTICAL 403 as seen through KMP.

    energy_unit: 8 (GJ, 0.001 GJ), 2 (kWh, 1 kWh) or 3 (MWh, 0.001 MWh).
    supported: register ids to answer (default DEFAULT_REGISTERS); others are omitted.
    start: simulated (year, month, day, hour, minute, second) at t0.
    Start values: energy_j (J), volume_l (l), e8/e9 (m3 x degC), hours (h), t1/t2 (0.01 degC),
    flow (l/h), info (info code), info_events (counter). The defaults contain bytes that must be
    stuffed on the wire: SW revision 0x0B06 ("K6") and 13 (0x0D) info events. The GetType codes
    are made up: Kamstrup publishes type codes for the 601 only (PROTOCOL.md 3.2).
    """

    def __init__(
        self,
        seed=1,
        address=frame.DEFAULT_ADDRESS,
        serial=67051653,
        meter_type=0x0403,
        sw_revision=0x0B06,
        energy_unit=ENERGY_GJ,
        supported=None,
        start=(2025, 1, 15, 6, 30, 0),
        energy_j=1234567000000,
        volume_l=9876540,
        e8=671600,
        e9=375300,
        hours=26789,
        t1=6850,
        t2=3920,
        flow=640,
        info=0,
        info_events=13,
    ):
        if energy_unit not in _ENERGY_SCALES:
            raise ValueError(
                "energy_unit: expected 8 (GJ), 2 (kWh) or 3 (MWh), got %r" % energy_unit
            )
        self._rng = XorShift32(seed)
        self.address = address
        self.serial = serial
        self.meter_type = meter_type
        self.sw_revision = sw_revision
        self.energy_unit = energy_unit
        exp, self._energy_div = _ENERGY_SCALES[energy_unit]
        self._enc = dict(ENCODINGS)
        self._enc[E1] = (energy_unit, 4, exp)
        self._enc[E3] = (energy_unit, 4, exp)
        if supported is None:
            supported = DEFAULT_REGISTERS
        for rid in supported:
            if rid not in self._enc:
                raise ValueError("register 0x%04X is not modelled by the virtual meter" % rid)
        self.supported = set(supported)
        self.info = info
        self.info_events = info_events
        y, mo, d, h, mi, s = start
        self._now_ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + s * 1000
        self._op_ms = hours * _MS_PER_H
        # Totals as exact accumulators: W*ms, (l/h)*ms, (l/h)*ms*0.01 degC.
        self._energy = energy_j * 1000
        self._volume = volume_l * _MS_PER_H
        self._e8 = e8 * _M3C_DIV
        self._e9 = e9 * _M3C_DIV
        self._t1 = self._t1_target = t1
        self._t2 = self._t2_target = t2
        self._flow = self._flow_target = flow
        self._tick_left = TICK_MS
        self._update_power()
        self._day = self._now_ms // 86400000
        date = self._date()
        power = self._power_w // 100
        self._year = _Period(flow, power, t1, t2, date)
        self._month = _Period(flow, power, t1, t2, date)
        self._ym = (y, mo)
        # Counters for tests and diagnostics.
        self.requests = 0  # frames handed to handle()
        self.answered = 0
        self.ignored = 0  # silence: bad frame, wrong address, unknown CID, malformed
        self.last_rids = None  # register ids of the last GetRegister request

    # -- time --------------------------------------------------------------------------------

    def advance(self, seconds):
        """Let simulated time pass (int or float seconds, >= 0)."""
        self.advance_ms(int(seconds * 1000 + 0.5))

    def advance_ms(self, ms):
        if ms < 0:
            raise ValueError("time only moves forward: %r ms" % ms)
        while ms > 0:
            step = ms if ms < self._tick_left else self._tick_left
            self._integrate(step)
            ms -= step
            self._tick_left -= step
            if self._tick_left == 0:
                self._tick_left = TICK_MS
                self._tick()

    def _integrate(self, dt):
        self._energy += self._power_w * dt
        dv = self._flow * dt
        self._volume += dv
        self._e8 += dv * self._t1
        self._e9 += dv * self._t2
        self._op_ms += dt
        self._now_ms += dt
        self._year.integrate(self._t1, self._t2, dt)
        self._month.integrate(self._t1, self._t2, dt)

    def _tick(self):
        rng = self._rng
        # Mean-reverting random walks around slowly wandering set points: district-heating
        # supply 55-80 degC, return 30-45 degC, flow up to ~qp 1.5 m3/h.
        self._t1_target = _clamp(self._t1_target + rng.randint(-8, 8), 6000, 7600)
        self._t2_target = _clamp(self._t2_target + rng.randint(-6, 6), 3300, 4200)
        self._flow_target = _clamp(self._flow_target + rng.randint(-10, 10), 250, 1200)
        self._t1 = _clamp(
            self._t1 + (self._t1_target - self._t1) // 8 + rng.randint(-15, 15), 5500, 8000
        )
        self._t2 = _clamp(
            self._t2 + (self._t2_target - self._t2) // 8 + rng.randint(-10, 10), 3000, 4500
        )
        self._flow = _clamp(
            self._flow + (self._flow_target - self._flow) // 6 + rng.randint(-12, 12), 40, 1500
        )
        self._update_power()
        day = self._now_ms // 86400000
        if day != self._day:
            self._day = day
            y, m, _ = civil_from_days(day)
            date = self._date()
            power = self._power_w // 100
            if y != self._ym[0]:
                self._year = _Period(self._flow, power, self._t1, self._t2, date)
            if (y, m) != self._ym:
                self._month = _Period(self._flow, power, self._t1, self._t2, date)
            self._ym = (y, m)
        date = self._date()
        power = self._power_w // 100
        self._year.sample(self._flow, power, date)
        self._month.sample(self._flow, power, date)

    def _update_power(self):
        self._power_w = self._flow * 4180 * (self._t1 - self._t2) // _POWER_DIV

    def _date(self):
        y, m, d = civil_from_days(self._now_ms // 86400000)
        return (y % 100) * 10000 + m * 100 + d

    def _clock(self):
        s = self._now_ms // 1000 % 86400
        return s // 3600 * 10000 + s // 60 % 60 * 100 + s % 60

    # -- values ------------------------------------------------------------------------------

    def _mantissa(self, rid):
        if rid == E1:
            return self._energy // self._energy_div
        if rid == E3:
            return 0  # a heating-only installation never accrues cooling energy
        if rid == V1:
            return self._volume // (_MS_PER_H * 10)  # 0.01 m3 = 10 l
        if rid == FLOW:
            return self._flow
        if rid == POWER:
            return self._power_w // 100  # 0.1 kW, truncated like a display
        if rid == T1:
            return self._t1
        if rid == T2:
            return self._t2
        if rid == TDIFF:
            return self._t1 - self._t2
        if rid == E8:
            return self._e8 // _M3C_DIV
        if rid == E9:
            return self._e9 // _M3C_DIV
        if rid == INFO:
            return self.info
        if rid == INFO_EVENTS:
            return self.info_events
        if rid == E1_HIGH_RES:
            return self._energy // 3600000 % 10000000  # Wh; the 403 drops digits above 10^7
        if rid == SERIAL_NO:
            return self.serial
        if rid == CLOCK:
            return self._clock()
        if rid == DATE:
            return self._date()
        if rid == HOURS:
            return self._op_ms // _MS_PER_H
        if MAX_FLOW_Y_DATE <= rid <= MIN_POWER_Y:
            return _period_value(self._year, rid - MAX_FLOW_Y_DATE)
        if MAX_FLOW_M_DATE <= rid <= MIN_POWER_M:
            return _period_value(self._month, rid - MAX_FLOW_M_DATE)
        if rid == AVG_T1_Y:
            return self._year.avg_t1()
        if rid == AVG_T2_Y:
            return self._year.avg_t2()
        if rid == AVG_T1_M:
            return self._month.avg_t1()
        if rid == AVG_T2_M:
            return self._month.avg_t2()
        raise KeyError(rid)

    def encoding(self, rid):
        """(unit, NoB, exponent) the meter uses for rid, None when it does not answer it."""
        if rid not in self.supported:
            return None
        return self._enc[rid]

    def truth(self, rid):
        """(unit, mantissa, exponent) the meter would send for rid now; None if omitted."""
        if rid not in self.supported:
            return None
        unit, _, exp = self._enc[rid]
        return unit, self._mantissa(rid), exp

    def truth_text(self, rid):
        """Exact decimal text of truth(rid), e.g. '68.50'; None if omitted."""
        t = self.truth(rid)
        return None if t is None else format_decimal(t[1], t[2])

    def record(self, rid):
        """The register record as sent (RID, unit, NoB, SiEx, value)."""
        unit, nob, exp = self._enc[rid]
        return messages.encode_register(rid, unit, self._mantissa(rid), exp, nob)

    # -- protocol ----------------------------------------------------------------------------

    def respond(self, cid, data, omit=()):
        """Response payload (bytes after the CID) for a request, None when a meter is silent."""
        if cid == frame.CID_GET_TYPE:
            if data:
                return None
            mt, sw = self.meter_type, self.sw_revision
            return bytes((mt >> 8, mt & 0xFF, sw >> 8, sw & 0xFF))
        if cid == frame.CID_GET_SERIAL:
            if data:
                return None
            return self.serial.to_bytes(4, "big")
        if cid == frame.CID_GET_REGISTER:
            try:
                rids = messages.parse_register_request(data)
            except KmpError:
                return None
            self.last_rids = rids
            out = bytearray()
            for rid in rids:
                # Unsupported registers are left out, possibly leaving no records at all.
                if rid in self.supported and rid not in omit:
                    out.extend(self.record(rid))
            return bytes(out)
        return None  # SetClock, PutRegister, logger commands: not offered by this meter

    def handle(self, wire, omit=()):
        """Response wire frame for one request wire frame, or None (the meter stays silent)."""
        self.requests += 1
        try:
            f = strict.decode_frame(wire, frame.START_TO_METER)
        except KmpError:
            f = None
        data = None
        if f is not None and not f.ack and f.address == self.address:
            data = self.respond(f.cid, f.data, omit)
        if data is None:
            self.ignored += 1
            return None
        self.answered += 1
        return frame.encode_frame(self.address, f.cid, data, frame.START_FROM_METER)


def _clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def _period_value(p, k):
    # Register order within a block: max flow date, max flow, min flow date, min flow, then the
    # same four for power (DOC section 5.2, 0x7B..0x82 and 0x8A..0x91).
    return (
        p.max_flow_date,
        p.max_flow,
        p.min_flow_date,
        p.min_flow,
        p.max_power_date,
        p.max_power,
        p.min_power_date,
        p.min_power,
    )[k]


# -- the optical line ------------------------------------------------------------------------

CORRUPTIONS = ("flip", "drop", "insert", "crc")


class FaultyLine:
    """The optical link between a master and the meter, with switchable faults.

    on_request(wire) -> [(delay_ms, bytes), ...]: what the master receives after sending one
    complete request, delays counted from its last byte (the contract of the test FakeUart).
    events(wire) gives the same as (delay_ms, kind, bytes) with kind "echo", "zero" or
    "response". Every option is a plain attribute and may be changed between requests.
    """

    def __init__(
        self,
        meter,
        seed=1,
        echo=False,
        stray_zeros=0.0,
        latency_ms=(40, 150),
        asleep=False,
        corrupt_rate=0.0,
        omit=(),
    ):
        self.meter = meter
        self._rng = XorShift32(seed)
        self.echo = echo  # IR head hands every transmitted byte back (PROTOCOL.md 1.4)
        self.stray_zeros = stray_zeros  # probability of a 0x00 before and, again, after
        self.latency_ms = latency_ms  # (min, max) from the last request byte to the response
        self.asleep = asleep  # optical eye off: nothing but the head's echo comes back
        self.corrupt_rate = corrupt_rate  # probability a response is damaged
        self.omit = omit  # registers answered as if unsupported
        self.bytes_in = 0
        self.bytes_out = 0
        self.requests = 0
        self.responses = 0
        self.corrupted = 0
        self.faults = {"flip": 0, "drop": 0, "insert": 0, "crc": 0}
        self.last_fault = None

    def events(self, wire):
        wire = bytes(wire)
        rng = self._rng
        self.requests += 1
        self.bytes_in += len(wire)
        out = []
        if self.echo:
            # The echo arrives while the request is being sent, so it is there at once.
            out.append((0, "echo", wire))
        if not self.asleep:
            lo, hi = self.latency_ms
            latency = rng.randint(lo, hi) if hi > lo else lo
            zeros = _ppm(self.stray_zeros)
            if zeros and rng.chance(zeros):
                out.append((rng.randint(0, latency - 1) if latency > 0 else 0, "zero", b"\x00"))
            resp = self.meter.handle(wire, self.omit)
            if resp is not None:
                self.last_fault = None
                corrupt = _ppm(self.corrupt_rate)
                if corrupt and rng.chance(corrupt):
                    resp = self._corrupt(resp)
                out.append((latency, "response", resp))
                self.responses += 1
                if zeros and rng.chance(zeros):
                    after = latency + wire_time_ms(len(resp)) + rng.randint(1, 40)
                    out.append((after, "zero", b"\x00"))
        for _, _, data in out:
            self.bytes_out += len(data)
        return out

    def on_request(self, wire):
        return [(delay, data) for delay, _, data in self.events(wire)]

    __call__ = on_request  # a FaultyLine is a FakeUart responder as it is

    def _corrupt(self, resp):
        rng = self._rng
        kind = CORRUPTIONS[rng.randint(0, len(CORRUPTIONS) - 1)]
        n = len(resp)
        # Slices rather than del/slice assignment: MicroPython's bytearray lacks item deletion.
        if kind == "flip":  # anywhere, start and stop bytes included
            i = rng.randint(0, n - 1)
            raw = resp[:i] + bytes((resp[i] ^ (1 << rng.randint(0, 7)),)) + resp[i + 1 :]
        elif kind == "drop":
            i = rng.randint(0, n - 1)
            raw = resp[:i] + resp[i + 1 :]
        elif kind == "insert":  # between start and stop
            i = rng.randint(1, n - 1)
            raw = resp[:i] + bytes((rng.randint(0, 255),)) + resp[i:]
        else:
            raw = _with_bad_crc(resp, rng.randint(1, 0xFFFF))
        self.corrupted += 1
        self.faults[kind] += 1
        self.last_fault = kind
        return raw


def _with_bad_crc(resp, xor):
    # Well framed and stuffed, only the CRC is wrong: the case a CRC check alone must catch.
    f = strict.decode_frame(resp, frame.START_FROM_METER)
    body = bytearray((f.address, f.cid))
    body.extend(f.data)
    crc = frame.crc16(body) ^ xor
    body.append(crc >> 8)
    body.append(crc & 0xFF)
    return bytes((frame.START_FROM_METER,)) + frame.stuff(body) + bytes((frame.STOP,))


# -- serial front end ------------------------------------------------------------------------

# A stuffed request is at most twice its body plus start and stop.
_MAX_REQUEST = 2 * frame.MAX_BODY + 2


class RequestSplitter:
    """Cuts the master's byte stream into raw request frames, 0x80 .. 0x0D, unchecked.

    The frames are not validated here: a frame with a bad CRC still reaches the line (the head
    echoes it) and the meter (which stays silent). Bytes outside frames are dropped; a raw 0x80
    inside a frame starts a new one, as only a new request can carry it.
    """

    def __init__(self):
        self._buf = bytearray()
        self._in_frame = False
        self.dropped = 0

    def feed(self, data):
        frames = []
        for b in data:
            if b == frame.START_TO_METER:
                if self._in_frame:
                    self.dropped += len(self._buf)
                self._buf = bytearray((b,))
                self._in_frame = True
            elif not self._in_frame:
                self.dropped += 1
            else:
                self._buf.append(b)
                if b == frame.STOP:
                    frames.append(bytes(self._buf))
                    self._buf = bytearray()
                    self._in_frame = False
                elif len(self._buf) > _MAX_REQUEST:
                    self.dropped += len(self._buf)
                    self._buf = bytearray()
                    self._in_frame = False
        return frames
