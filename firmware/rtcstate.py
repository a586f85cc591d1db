# State kept in RTC memory across deep sleep (machine.RTC().memory(), at most 2048 bytes on the
# ESP32; it survives deep sleep and soft reset, not a power cut). One fixed, versioned struct
# layout closed by a CRC-32: anything that does not match exactly (other magic, version, length
# or a bad CRC) is a cold start, never trusted. docs/storage.md lists every field and offset.
# A layout change bumps VERSION, so the first boot of new firmware starts from defaults.

import struct
from binascii import crc32

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


MAGIC = b"KRTC"
VERSION = 4
SLOTS = 8  # totals the guard state is kept for
SIZE = 712  # bytes, CRC included

# Fixed part, offsets 0..71 (see docs/storage.md).
_HEAD_FMT = "<4sBBHIIIHHHHIIBBBB6s4s4s4s4sHII"
_HEAD = const(72)
# One guard slot, 24 bytes: id hash u32, last mantissa i64, last exponent i8, pending-lower
# mantissa i64, pending-lower exponent i8, pending-lower count u8, slot flags u8.
_SLOT_FMT = "<IqbqbBB"
_SLOT = const(24)
# Node block after the guard slots, 32 bytes: meter serial u32, meter type u16, software
# revision text 6s, units hash u32, interval s u32, reads to skip u16, network retry at
# (elapsed_s) u32, reserved u16, clock synced at (elapsed_s) u32. Kept so a wake needs no
# GetType/GetSerialNo (the meter's battery) and re-announces discovery only when the units
# change.
_NODE_FMT = "<IH6sIIHIHI"
_NODE_AT = const(264)  # _HEAD + SLOTS * _SLOT
# Reading block after the node block, 300 bytes: the reading of this wake while it is being
# published, so a reset in the radio phase (watchdog, crash) does not lose it: the next boot
# moves it into the flash buffer. flags u8 (bit 0 held, bit 1 time known), entries u8,
# reserved u16, time u32, uptime u32, then per value: id hash u32, length u8 (255: null), text.
_READING_FMT = "<BBHII"
_READING_AT = const(296)  # _NODE_AT + 32
_READING_HEAD = const(12)
_READING_SIZE = const(300)
_NULL = const(255)
# Read budget block after the reading block, 112 bytes (firmware/budget.py): the hour of the
# newest bucket u32, setup window until u32, reads held back u32 (all on elapsed_s), then the
# 24 hourly counts of exchanges charged to the budget and the 24 of all exchanges, u16 each,
# and when the serial was last read (elapsed_s u32, 0 = not yet: a swapped meter is looked for
# a day later). Kept so a battery node's budget covers the day, not the wake.
_BUDGET_FMT = "<III24H24HI"
_BUDGET_AT = const(596)  # _READING_AT + _READING_SIZE
_CRC_AT = const(708)  # _BUDGET_AT + 112

# flags (offset 36)
_F_DISCOVERY = const(1)
_F_STAY_AWAKE = const(2)
_F_REPL = const(4)  # the next boot stays in the REPL (asked for with Ctrl-C)
# network flags (offset 37)
_N_BSSID = const(1)  # bssid and channel valid
_N_STATIC = const(2)  # ip, netmask, gateway valid
_N_DNS = const(4)
# guard slot flags
_S_LAST = const(1)
_S_LOWER = const(2)

_I64 = 1 << 63


def id_hash(sensor_id):
    """The 32-bit key a total's guard state is stored under (CRC-32 of the id's UTF-8)."""
    return crc32(sensor_id.encode())


def _sat(x, bits):
    # Counters saturate instead of wrapping: a failure counter that wrapped to 0 would lie.
    x = int(x)
    if x < 0:
        raise ValueError("negative counter: %d" % x)
    top = (1 << bits) - 1
    return top if x > top else x


def _uint(x, bits, what):
    x = int(x)
    if not 0 <= x < (1 << bits):
        raise ValueError("%s out of range: %d" % (what, x))
    return x


def _decimal(value, what):
    # An exact decimal (mantissa, exponent) as stored by the guard; MicroPython's struct would
    # silently truncate out-of-range numbers, so check here.
    m, e = value
    if not -_I64 <= m < _I64 or not -128 <= e <= 127:
        raise ValueError("%s does not fit i64/i8: %r" % (what, value))
    return m, e


def _fits(last, pending):
    for value in (last, pending and pending[0]):
        if value is not None and not (-_I64 <= value[0] < _I64 and -128 <= value[1] <= 127):
            return False
    return True


def _ip_bytes(text, what):
    if text is None:
        return b"\0\0\0\0"
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("%s is not a dotted IPv4 address: %r" % (what, text))
    out = bytearray(4)
    for i in range(4):
        out[i] = _uint(parts[i], 8, what)  # int("x") raises ValueError too
    return bytes(out)


def _ip_text(raw):
    return "%d.%d.%d.%d" % (raw[0], raw[1], raw[2], raw[3])


class RtcState:
    def __init__(self):
        self.fresh = True  # defaults, not restored from RTC memory (cold start or reset)
        self.boots = 0  # boots seen while the RTC state was valid, this one included
        self.wakes = 0  # wakes from deep sleep
        self.elapsed_s = 0  # seconds since the cold start, awake + asleep (dates clock-less
        #                    readings: the buffer's Reading.uptime)
        self.wake_failures = 0  # consecutive wakes that did not publish
        self.no_answers = 0  # consecutive meter reads without an answer
        self.crashes = 0  # consecutive crashes (safe mode above a threshold)
        self.buffered = 0  # readings in the flash buffer at the last save (0: skip opening it)
        self.next_wake = 0  # wall-clock seconds of the planned wake, 0 = none
        self.backoff_s = 0  # current retry backoff
        self.discovery_published = False
        self.stay_awake = False
        # Ctrl-C: the watchdog cannot be stopped, so the node resets and the next boot stays in
        # the REPL without starting it.
        self.repl = False
        # Network cache: bssid (6 bytes) + channel for a scan-free connect; static IP config.
        self.bssid = None
        self.channel = 0
        self.ip = None  # "a.b.c.d"; ip, netmask and gateway are kept only all together
        self.netmask = None
        self.gateway = None
        self.dns = None
        # TotalsGuard state: counters and up to SLOTS totals, each
        # (id_hash, (mantissa, exponent) or None, (mantissa, exponent, count) or None).
        self.guard_held = 0
        self.guard_replacements = 0
        self.totals = []
        # Node block: the meter's identity (serial 0 = unknown), what discovery was announced
        # for, the interval (a cmd may have changed it), meter and network backoff.
        self.serial = 0
        self.meter_type = 0
        self.sw_revision = ""
        self.units_hash = 0
        self.interval_s = 0  # 0: the configured one
        self.skip_reads = 0
        self.net_retry_at = 0  # elapsed_s before which no Wi-Fi is tried (0: now)
        self.clock_synced_at = 0  # elapsed_s of the last NTP sync (the RTC drifts in deep sleep)
        # A reading not yet published: ([(id_hash, text or None)], time or None, uptime) or
        # None; see hold_reading() / held_reading().
        self.reading = None
        # Read budget (firmware/budget.py), on elapsed_s: None until a wake saved it (a cold
        # start begins with a setup window).
        self.budget = None  # (hour, setup_until, held, [24 charged], [24 spent])
        self.identity_at = 0  # elapsed_s of the last serial read, 0 = unknown

    # -- bytes ---------------------------------------------------------------------------------

    def pack(self):
        """The SIZE-byte image for RTC memory. ValueError if a field is out of range."""
        buf = bytearray(SIZE)
        flags = (
            (_F_DISCOVERY if self.discovery_published else 0)
            | (_F_STAY_AWAKE if self.stay_awake else 0)
            | (_F_REPL if self.repl else 0)
        )
        net = 0
        bssid = b"\0" * 6
        if self.bssid is not None:
            if len(self.bssid) != 6:
                raise ValueError("bssid must be 6 bytes")
            bssid = bytes(self.bssid)
            net |= _N_BSSID
        ip = netmask = gateway = dns = b"\0\0\0\0"
        if self.ip is not None and self.netmask is not None and self.gateway is not None:
            ip = _ip_bytes(self.ip, "ip")
            netmask = _ip_bytes(self.netmask, "netmask")
            gateway = _ip_bytes(self.gateway, "gateway")
            net |= _N_STATIC
        if self.dns is not None:
            dns = _ip_bytes(self.dns, "dns")
            net |= _N_DNS
        if len(self.totals) > SLOTS:
            raise ValueError("%d totals, %d slots" % (len(self.totals), SLOTS))
        struct.pack_into(
            _HEAD_FMT,
            buf,
            0,
            MAGIC,
            VERSION,
            SLOTS,
            SIZE,
            _sat(self.boots, 32),
            _sat(self.wakes, 32),
            _sat(self.elapsed_s, 32),
            _sat(self.wake_failures, 16),
            _sat(self.no_answers, 16),
            _sat(self.crashes, 16),
            _sat(self.buffered, 16),
            _uint(self.next_wake, 32, "next_wake"),
            _uint(self.backoff_s, 32, "backoff_s"),
            flags,
            net,
            _uint(self.channel, 8, "channel"),
            len(self.totals),
            bssid,
            ip,
            netmask,
            gateway,
            dns,
            0,
            _sat(self.guard_held, 32),
            _sat(self.guard_replacements, 32),
        )
        for i in range(len(self.totals)):
            h, last, lower = self.totals[i]
            sflags = 0
            lm = le = pm = pe = pc = 0
            if last is not None:
                lm, le = _decimal(last, "last total")
                sflags |= _S_LAST
            if lower is not None:
                pm, pe = _decimal(lower[:2], "pending lower total")
                pc = _sat(lower[2], 8)
                sflags |= _S_LOWER
            struct.pack_into(
                _SLOT_FMT, buf, _HEAD + i * _SLOT, _uint(h, 32, "id hash"), lm, le, pm, pe, pc,
                sflags,
            )  # fmt: skip
        sw = self.sw_revision.encode()
        if len(sw) > 6:
            raise ValueError("sw_revision longer than 6 bytes: %r" % self.sw_revision)
        struct.pack_into(
            _NODE_FMT, buf, _NODE_AT, _uint(self.serial, 32, "serial"),
            _uint(self.meter_type, 16, "meter_type"), sw, _uint(self.units_hash, 32, "units_hash"),
            _uint(self.interval_s, 32, "interval_s"), _sat(self.skip_reads, 16),
            _uint(self.net_retry_at, 32, "net_retry_at"), 0,
            _uint(self.clock_synced_at, 32, "clock_synced_at"),
        )  # fmt: skip
        self._pack_reading(buf)
        hour, until, held, charged, spent = self.budget or (0, 0, 0, [0] * 24, [0] * 24)
        if len(charged) != 24 or len(spent) != 24:
            raise ValueError("budget: 24 hourly counts expected")
        fields = [_uint(hour, 32, "budget hour"), _uint(until, 32, "setup until"), _sat(held, 32)]
        fields += [_sat(n, 16) for n in charged]
        fields += [_sat(n, 16) for n in spent]
        fields.append(_uint(self.identity_at, 32, "identity_at"))
        struct.pack_into(_BUDGET_FMT, buf, _BUDGET_AT, *fields)
        struct.pack_into("<I", buf, _CRC_AT, crc32(memoryview(buf)[:_CRC_AT]))
        return bytes(buf)

    def _pack_reading(self, buf):
        if self.reading is None or not self.reading_fits():
            return  # all zero: nothing held
        entries, when, uptime = self.reading
        struct.pack_into(_READING_FMT, buf, _READING_AT, 1 | (0 if when is None else 2),
                         len(entries), 0, _uint(when or 0, 32, "reading time"),
                         _sat(uptime, 32))  # fmt: skip
        at = _READING_AT + _READING_HEAD
        for h, text in entries:
            raw = b"" if text is None else text.encode()
            struct.pack_into("<IB", buf, at, h, _NULL if text is None else len(raw))
            buf[at + 5 : at + 5 + len(raw)] = raw
            at += 5 + len(raw)

    def reading_fits(self):
        """True when the held reading fits the reading block (it is not kept otherwise)."""
        if self.reading is None:
            return True
        size = _READING_HEAD
        for _, text in self.reading[0]:
            n = 0 if text is None else len(text.encode())
            if n >= _NULL:
                return False
            size += 5 + n
        return size <= _READING_SIZE and len(self.reading[0]) < 256

    def hold_reading(self, values, when, uptime):
        """Keep a reading ({sensor id: text or None}, time or None, uptime s) until it is
        published (then set reading = None). Returns False if it does not fit."""
        self.reading = ([(id_hash(k), values[k]) for k in values], when, uptime)
        return self.reading_fits()

    def held_reading(self, ids):
        """The held reading for the sensor ids configured now ({id: text or None}, time,
        uptime), matched by hash (values of ids no longer configured are left out), or None."""
        if self.reading is None:
            return None
        entries, when, uptime = self.reading
        by_hash = {id_hash(k): k for k in ids}
        values = {}
        for h, text in entries:
            if h in by_hash:
                values[by_hash[h]] = text
        return values, when, uptime

    @classmethod
    def unpack(cls, data):
        """The state in data (RTC memory contents), or None unless magic, version, length and
        CRC all match: a corrupt or foreign image is never trusted."""
        if data is None or len(data) < SIZE:
            return None
        f = struct.unpack_from(_HEAD_FMT, data, 0)
        if f[0] != MAGIC or f[1] != VERSION or f[2] != SLOTS or f[3] != SIZE:
            return None
        if crc32(memoryview(data)[:_CRC_AT]) != struct.unpack_from("<I", data, _CRC_AT)[0]:
            return None
        used = f[16]
        if used > SLOTS:
            return None
        s = cls()
        s.fresh = False
        (s.boots, s.wakes, s.elapsed_s, s.wake_failures, s.no_answers, s.crashes, s.buffered,
         s.next_wake, s.backoff_s) = f[4:13]  # fmt: skip
        s.discovery_published = bool(f[13] & _F_DISCOVERY)
        s.stay_awake = bool(f[13] & _F_STAY_AWAKE)
        s.repl = bool(f[13] & _F_REPL)
        net = f[14]
        s.channel = f[15]
        if net & _N_BSSID:
            s.bssid = bytes(f[17])
        if net & _N_STATIC:
            s.ip, s.netmask, s.gateway = _ip_text(f[18]), _ip_text(f[19]), _ip_text(f[20])
        if net & _N_DNS:
            s.dns = _ip_text(f[21])
        s.guard_held, s.guard_replacements = f[23], f[24]
        for i in range(used):
            h, lm, le, pm, pe, pc, sflags = struct.unpack_from(_SLOT_FMT, data, _HEAD + i * _SLOT)
            last = (lm, le) if sflags & _S_LAST else None
            lower = (pm, pe, pc) if sflags & _S_LOWER else None
            s.totals.append((h, last, lower))
        n = struct.unpack_from(_NODE_FMT, data, _NODE_AT)
        s.serial, s.meter_type = n[0], n[1]
        s.sw_revision = bytes(n[2]).rstrip(b"\0").decode()
        s.units_hash, s.interval_s, s.skip_reads, s.net_retry_at = n[3], n[4], n[5], n[6]
        s.clock_synced_at = n[8]
        s._unpack_reading(data)
        b = struct.unpack_from(_BUDGET_FMT, data, _BUDGET_AT)
        if b[1]:  # a saved budget always has a setup window end (a cold start's is 900 s)
            s.budget = (b[0], b[1], b[2], list(b[3:27]), list(b[27:51]))
        s.identity_at = b[51]
        return s

    def _unpack_reading(self, data):
        flags, count, _, when, uptime = struct.unpack_from(_READING_FMT, data, _READING_AT)
        if not flags & 1:
            return
        entries = []
        at = _READING_AT + _READING_HEAD
        for _ in range(count):
            h, n = struct.unpack_from("<IB", data, at)
            at += 5
            if n == _NULL:
                entries.append((h, None))
            else:
                entries.append((h, bytes(data[at : at + n]).decode()))
                at += n
        self.reading = (entries, when if flags & 2 else None, uptime)

    @classmethod
    def load(cls, memory_getter):
        """State from RTC memory (pass machine.RTC().memory); defaults (fresh) if invalid."""
        s = cls.unpack(memory_getter())
        return s if s is not None else cls()

    def save(self, memory_setter):
        """Write the state to RTC memory (pass machine.RTC().memory)."""
        memory_setter(self.pack())

    def forget_network(self):
        """Drop the cached BSSID/channel/IP (e.g. after a connect with them failed)."""
        self.bssid = None
        self.channel = 0
        self.ip = self.netmask = self.gateway = self.dns = None

    # -- TotalsGuard ---------------------------------------------------------------------------

    def from_guard(self, guard, ids=None):
        """Copy the guard's state in. ids: total sensor ids in priority order (config order);
        default all ids the guard knows, sorted. The first SLOTS ids get a slot; returns the
        number of ids left without one (their guard state is lost over deep sleep)."""
        lower = guard._lower  # {id: [(mantissa, exponent), count]}
        if ids is None:
            ids = sorted(set(guard.last) | set(lower))
        self.totals = []
        hashes = []
        left = 0
        for key in ids:
            last = guard.last.get(key)
            pending = lower.get(key)
            if last is None and pending is None:
                continue
            h = id_hash(key)
            if len(self.totals) >= SLOTS or h in hashes or not _fits(last, pending):
                # no slot, a CRC-32 collision with an id already stored, or a value the slot
                # cannot hold (the codec takes up to 8 value bytes; a slot keeps an i64)
                left += 1
                continue
            hashes.append(h)
            low = None
            if pending is not None:
                low = (pending[0][0], pending[0][1], pending[1])
            self.totals.append((h, last, low))
        self.guard_held = guard.held
        self.guard_replacements = guard.replacements
        return left

    def to_guard(self, guard, ids):
        """Restore the guard's state for the sensor ids given (the configured totals): ids are
        matched by hash; a slot whose id is no longer configured is ignored. Returns the number
        of ids restored."""
        restored = 0
        for key in ids:
            h = id_hash(key)
            for slot in self.totals:
                if slot[0] != h:
                    continue
                if slot[1] is not None:
                    guard.last[key] = slot[1]
                if slot[2] is not None:
                    guard._lower[key] = [(slot[2][0], slot[2][1]), slot[2][2]]
                restored += 1
                break
        guard.held = self.guard_held
        guard.replacements = self.guard_replacements
        return restored
