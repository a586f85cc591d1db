# Readings that could not be published (Wi-Fi or broker down), kept on flash until the broker
# has them; the node delivers them later, oldest first, on <base>/<node_id>/history (QoS 1).
# docs/storage.md has the file format, the guarantees and the flash-wear numbers.
#
# Why a directory of small append-only segment files and not one preallocated ring file: the
# ESP32 port formats its filesystem as LittleFS, whose files are copy-on-write skip lists.
# Rewriting bytes in the middle of a file copies every block after them (lfs_file_flush,
# "copy over anything after current branch"), so rewriting one slot of a 172 KB ring file
# would rewrite ~86 KB on average. Appending copies only the file's partial last block. So a
# segment is one flash block (16 slots of 256 bytes), filled by appends and deleted whole once
# every record in it is delivered or pushed out of the window.
#
# A record lives at a position fixed by its sequence number (segment (seq-1)//per, slot
# (seq-1)%per), carries its seq and a CRC-32, and is valid only at its own position: a torn,
# stale or corrupted slot is skipped, never returned.

import os
import struct
from binascii import crc32

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):  # type: ignore[misc]
        return x


CAPACITY = const(672)  # 7 days at a 15-minute interval
SLOT_SIZE = const(256)
_BLOCK = const(4096)  # ESP32 flash sector = LittleFS block: default segment size

# Slot: header, payload (entries), zero padding, CRC-32 of everything before it in the slot.
#   magic u8, version u8, flags u8, entries u8, seq u32, time u32, uptime u32, payload length u16
_HDR_FMT = "<BBBBIIIH"
_HDR = const(18)
_MAGIC = const(0xB7)
_VERSION = const(1)
_F_CLOCK = const(1)  # flags bit 0: time is wall-clock seconds; clear: the clock was not set
_NONE = const(0xFF)  # value length byte of a None value
_U32 = 0xFFFFFFFF
_RESIDUE = const(0x2144DF1C)  # CRC-32 of any data followed by its own CRC (little-endian)

# The delivered-up-to pointer: two copies written alternately (A/B), the valid one with the
# higher generation wins, so a torn write loses at most that one update.
#   magic, slot size u16, slots per segment u16, generation u32, acked seq u32, dropped u32, CRC
_STATE_FMT = "<4sHHIII"
_STATE_MAGIC = b"KBUF"
_STATE = const(24)


class Reading:
    """One meter reading. values: {sensor id: exact decimal text or None}. time: wall-clock
    seconds (time.time()), or None when the clock was not set. uptime: the caller's monotonic
    seconds (e.g. seconds since cold boot, across deep sleep): it dates clock-less readings
    once the clock is known. seq is assigned by the buffer (1, 2, 3, ...)."""

    def __init__(self, values, time=None, uptime=0, seq=0):
        self.values = values
        self.time = time
        self.uptime = uptime
        self.seq = seq

    def __eq__(self, other):
        return (
            isinstance(other, Reading)
            and self.values == other.values
            and self.time == other.time
            and self.uptime == other.uptime
        )

    def __repr__(self):
        return "Reading(%r, time=%r, uptime=%r, seq=%r)" % (
            self.values,
            self.time,
            self.uptime,
            self.seq,
        )


def _u32(x, what):
    x = int(x)
    if not 0 <= x <= _U32:
        raise ValueError("%s out of range: %d" % (what, x))
    return x


def _check(buf, n, seq):
    """Payload length of the record for seq in the slot buffer buf (n bytes read), or -1 when
    the slot is not a complete, valid record of exactly that seq (empty, torn, corrupted,
    stale, other layout). It runs once per slot when a buffer is opened, so it allocates
    nothing: fields are read byte by byte (no tuples, no big ints) and the CRC, which covers
    the whole slot, is checked through the CRC-32 residue: the CRC of data followed by its own
    little-endian CRC is the constant 0x2144DF1C, a small int."""
    if n != len(buf) or buf[0] != _MAGIC or buf[1] != _VERSION:
        return -1
    if buf[4] | (buf[5] << 8) | (buf[6] << 16) != seq & 0xFFFFFF or buf[7] != seq >> 24:
        return -1
    if crc32(buf) != _RESIDUE:
        return -1
    length = buf[16] | (buf[17] << 8)
    return length if _HDR + length + 4 <= n else -1


class ReadingBuffer:
    """A bounded persistent FIFO of Readings in directory path (created if missing; its parent
    must exist). Keeps the newest `capacity` undelivered readings; older ones are dropped and
    counted. Delivery is at-least-once: a reading is returned by peek() until ack() covers it."""

    def __init__(self, path, capacity=CAPACITY, slot_size=SLOT_SIZE, per_segment=0):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if not 64 <= slot_size <= 65535:
            raise ValueError("slot_size must be 64..65535")
        per = per_segment or max(1, _BLOCK // slot_size)
        if not 1 <= per <= 65535:
            raise ValueError("per_segment must be 1..65535")
        self.path = path
        self.capacity = capacity
        self._slot = slot_size
        self._per = per
        # Segments on disk never exceed ceil(capacity / per) + 1; the validity bitmap covers
        # that many slots, indexed by (seq - 1) % ring.
        self._ring = ((capacity + per - 1) // per + 1) * per
        self._bits = bytearray((self._ring + 7) // 8)
        self._buf = bytearray(slot_size)
        self._mv = memoryview(self._buf)
        self._zero = bytes(slot_size)
        self._zmv = memoryview(self._zero)
        self._state = bytearray(_STATE)
        self._gen = 0
        self._acked = 0  # every seq <= _acked is delivered (or was dropped before _dropped)
        self._dropped = 0  # dropped as of the last state write; see the dropped property
        self._head = 0  # newest seq written
        self._count = 0  # valid records in the window
        self._seg_lo = 0  # lowest segment number that may still exist on disk
        self.corrupt = 0  # invalid slots found in the window since open (not persisted)
        self._open()

    # -- public API ----------------------------------------------------------------------------

    def pending(self):
        """Undelivered readings held (valid records between the ack pointer and the head)."""
        return self._count

    @property
    def dropped(self):
        """Readings discarded unsent because the buffer was full, since creation or clear().
        Derived from the sequence numbers, so it survives reboots without a write per drop."""
        return self._dropped + self._floor() - self._acked - 1

    @property
    def head(self):
        """Sequence number of the newest reading appended (0: none yet)."""
        return self._head

    def append(self, reading):
        """Store a reading as the newest; when full, the oldest undelivered one is dropped.
        ValueError (naming the size) if it does not fit in a slot; nothing is written then."""
        seq = self._head + 1
        self._encode(reading, seq)
        self._write_slot(seq)
        old_floor = self._floor()
        self._head = seq
        self._set(seq, True)
        self._count += 1
        if self._floor() > old_floor and self._get(old_floor):
            self._count -= 1  # the oldest undelivered reading fell out of the window
        self._trim()
        reading.seq = seq

    def peek(self, n=1):
        """The oldest n undelivered readings, oldest first, each with its seq. A slot that no
        longer checks out is skipped (and counted in corrupt)."""
        out = []
        if n < 1 or not self._count:
            return out
        f = None
        seg = -1
        try:
            seq = self._floor()
            while seq <= self._head and len(out) < n:
                if self._get(seq):
                    k = (seq - 1) // self._per
                    if k != seg:
                        if f is not None:
                            f.close()
                            f = None
                        seg = k
                        try:
                            f = open(self._name(k), "rb")
                        except OSError:
                            pass  # segment gone: its records are lost, not an error
                    r = None
                    if f is not None:
                        f.seek(((seq - 1) % self._per) * self._slot)
                        length = _check(self._buf, f.readinto(self._buf), seq)
                        if length >= 0:
                            r = self._decode(length)
                    if r is None:
                        self._lost(seq)
                    else:
                        r.seq = seq
                        out.append(r)
                seq += 1
        finally:
            if f is not None:
                f.close()
        return out

    def ack(self, seq):
        """Mark every reading up to and including seq as delivered: one small state write, then
        the segments that hold nothing undelivered are deleted."""
        if seq > self._head:
            raise ValueError("ack(%d) beyond the newest reading %d" % (seq, self._head))
        floor = self._floor()
        if seq < floor:
            return  # already delivered or dropped
        gone = 0
        for s in range(floor, seq + 1):
            if self._get(s):
                gone += 1
        self._save(seq, self.dropped)  # first: if the write fails, nothing has changed
        self._count -= gone
        self._trim()

    def clear(self):
        """Forget every buffered reading and reset dropped; sequence numbers keep counting."""
        self._save(self._head, 0)
        self._count = 0
        for name in self._listdir():
            k = self._segment_number(name)
            if k >= 0:
                self._remove(k)
        self._seg_lo = self._head // self._per

    # -- positions, window, bitmap -------------------------------------------------------------

    def _floor(self):
        # Oldest seq still held: past the ack pointer and at most `capacity` behind the head.
        floor = self._head - self.capacity + 1
        return floor if floor > self._acked else self._acked + 1

    def _get(self, seq):
        i = (seq - 1) % self._ring
        return self._bits[i >> 3] & (1 << (i & 7))

    def _set(self, seq, valid):
        i = (seq - 1) % self._ring
        if valid:
            self._bits[i >> 3] |= 1 << (i & 7)
        else:
            self._bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF

    def _lost(self, seq):
        self._set(seq, False)
        self._count -= 1
        self.corrupt += 1

    def _name(self, k):
        return "%s/s%08x" % (self.path, k)

    @staticmethod
    def _segment_number(name):
        if len(name) != 9 or name[0] != "s":
            return -1
        try:
            return int(name[1:], 16)
        except ValueError:
            return -1

    def _listdir(self):
        try:
            return os.listdir(self.path)
        except OSError:
            return []

    def _remove(self, k):
        try:
            os.remove(self._name(k))
        except OSError:
            pass  # already gone

    def _trim(self):
        # Delete segments whose last seq is below the window (delivered or dropped).
        floor = self._floor()
        per = self._per
        while self._seg_lo * per + per < floor:
            self._remove(self._seg_lo)
            self._seg_lo += 1

    # -- record encoding -----------------------------------------------------------------------

    def _encode(self, reading, seq):
        # Into the preallocated slot buffer; raises before anything touches the flash.
        buf = self._buf
        t = reading.time
        flags = 0
        if t is not None:
            t = _u32(t, "time")
            flags = _F_CLOCK
        uptime = _u32(reading.uptime, "uptime")
        end = self._slot - 4
        o = _HDR
        count = 0
        values = reading.values
        for key in values:
            value = values[key]
            if not isinstance(key, str):
                raise TypeError("sensor id must be str: %r" % (key,))
            if value is not None and not isinstance(value, str):
                raise TypeError("value of %s must be decimal text or None: %r" % (key, value))
            kb = key.encode()
            vb = b"" if value is None else value.encode()
            if not 1 <= len(kb) <= 255 or len(vb) >= _NONE:
                raise ValueError("sensor id must be 1..255 bytes, value < 255: %r" % key)
            count += 1
            need = o + 2 + len(kb) + len(vb)
            if need <= end:
                buf[o] = len(kb)
                buf[o + 1 : o + 1 + len(kb)] = kb
                o += 1 + len(kb)
                buf[o] = _NONE if value is None else len(vb)
                buf[o + 1 : o + 1 + len(vb)] = vb
            o = need
        if o > end or count > 255:
            raise ValueError(
                "reading needs %d bytes (%d values), more than slot_size %d"
                % (o + 4, count, self._slot)
            )
        struct.pack_into(
            _HDR_FMT, buf, 0, _MAGIC, _VERSION, flags, count, seq, t or 0, uptime, o - _HDR
        )
        self._mv[o:end] = self._zmv[o:end]
        struct.pack_into("<I", buf, end, crc32(self._mv[:end]))

    def _decode(self, length):
        # The record in the slot buffer (already checked) as a Reading; None if malformed.
        buf = self._buf
        mv = self._mv
        _, _, flags, count, _, t, uptime, _ = struct.unpack_from(_HDR_FMT, buf, 0)
        end = _HDR + length
        o = _HDR
        values = {}
        try:
            for _ in range(count):
                n = buf[o]
                key = str(mv[o + 1 : o + 1 + n], "utf-8")
                o += 1 + n
                n = buf[o]
                if n == _NONE:
                    value = None
                    n = 0
                else:
                    value = str(mv[o + 1 : o + 1 + n], "utf-8")
                o += 1 + n
                if o > end:
                    return None
                values[key] = value
        except (ValueError, IndexError):  # UnicodeError is a ValueError
            return None
        if o != end:
            return None
        return Reading(values, t if flags & _F_CLOCK else None, uptime)

    # -- flash ---------------------------------------------------------------------------------

    def _write_slot(self, seq):
        name = self._name((seq - 1) // self._per)
        off = ((seq - 1) % self._per) * self._slot
        try:
            size = os.stat(name)[6]
        except OSError:
            size = -1
        if size == off:
            f = open(name, "ab")  # the normal case: an append
        elif size < 0:
            f = open(name, "wb")  # a new segment (padded when seqs start mid-segment)
            size = 0
        elif size < off:
            f = open(name, "ab")  # slots missing (torn file): pad, they stay invalid
        else:
            f = open(name, "r+b")  # a torn or stale slot at this position: overwrite it
            f.seek(off)
            size = off
        try:
            while size < off:
                n = min(off - size, self._slot)
                f.write(self._zmv[:n])
                size += n
            f.write(self._buf)
        finally:
            f.close()  # LittleFS commits the file atomically here

    def _save(self, acked, dropped):
        gen = (self._gen + 1) & _U32
        buf = self._state
        struct.pack_into(
            _STATE_FMT, buf, 0, _STATE_MAGIC, self._slot, self._per, gen, acked, dropped
        )
        struct.pack_into("<I", buf, _STATE - 4, crc32(memoryview(buf)[: _STATE - 4]))
        with open("%s/ack%d" % (self.path, gen & 1), "wb") as f:
            f.write(buf)
        self._gen = gen
        self._acked = acked
        self._dropped = dropped

    def _load_state(self):
        best = None
        for i in (0, 1):
            try:
                with open("%s/ack%d" % (self.path, i), "rb") as f:
                    data = f.read(_STATE + 1)
            except OSError:
                continue
            if len(data) != _STATE:
                continue
            if crc32(data[: _STATE - 4]) != struct.unpack_from("<I", data, _STATE - 4)[0]:
                continue
            st = struct.unpack_from(_STATE_FMT, data, 0)
            if st[0] == _STATE_MAGIC and (best is None or st[3] > best[3]):
                best = st
        return best

    # -- open: rebuild head, window and bitmap -------------------------------------------------

    def _open(self):
        try:
            os.stat(self.path)
        except OSError:
            os.mkdir(self.path)
        segs = []
        for name in self._listdir():
            k = self._segment_number(name)
            if k >= 0:
                segs.append(k)
        segs.sort()
        st = self._load_state()
        if st is not None:
            self._gen, self._acked, self._dropped = st[3], st[4], st[5]
            if (st[1], st[2]) != (self._slot, self._per):
                # Written with another slot layout: count what was undelivered as dropped,
                # continue the numbering above it, start empty.
                head, lost = self._scan_old(segs, st[1], st[2])
                for k in segs:
                    self._remove(k)
                segs = []
                head = max(head, self._acked)
                self._save(head, self._dropped + lost)
        # Missing state: nothing was ever acknowledged (acked 0), so dropped = floor - 1 is
        # exact for a buffer that never went online.
        self._head = max(self._find_head(segs), self._acked)
        floor = self._floor()
        per = self._per
        keep = []
        for k in segs:
            if k * per + per < floor or k * per + 1 > self._head:
                self._remove(k)  # entirely delivered/dropped, or holds nothing valid
            else:
                keep.append(k)
        self._seg_lo = keep[0] if keep else (floor - 1) // per
        for k in keep:
            self._scan_bits(k, floor)

    def _find_head(self, segs):
        # Newest valid seq: the last valid slot of the highest segment that has one.
        per, slot = self._per, self._slot
        for i in range(len(segs) - 1, -1, -1):
            k = segs[i]
            try:
                f = open(self._name(k), "rb")
            except OSError:
                continue
            try:
                f.seek(0, 2)
                n = min(per, (f.tell() + slot - 1) // slot)
                for j in range(n - 1, -1, -1):
                    f.seek(j * slot)
                    seq = k * per + j + 1
                    if _check(self._buf, f.readinto(self._buf), seq) >= 0:
                        return seq
            finally:
                f.close()
        return 0

    def _scan_bits(self, k, floor):
        # One sequential pass over segment k: mark the valid records of the window.
        per, slot = self._per, self._slot
        first = k * per + 1
        j = floor - first if floor > first else 0
        try:
            f = open(self._name(k), "rb")
        except OSError:
            return
        try:
            f.seek(j * slot)
            while j < per:
                seq = first + j
                if seq > self._head:
                    break
                n = f.readinto(self._buf)
                if _check(self._buf, n, seq) >= 0:
                    self._set(seq, True)
                    self._count += 1
                else:
                    self._set(seq, False)
                    self.corrupt += 1
                if n < slot:
                    # End of file: the rest of the segment's window slots were never written.
                    for s in range(seq + 1, min(first + per, self._head + 1)):
                        self._set(s, False)
                        self.corrupt += 1
                    break
                j += 1
        finally:
            f.close()

    def _scan_old(self, segs, slot, per):
        # (newest seq, undelivered valid records) of segments written with another layout.
        buf = bytearray(slot)
        head = lost = 0
        for k in segs:
            try:
                f = open(self._name(k), "rb")
            except OSError:
                continue
            try:
                for j in range(per):
                    n = f.readinto(buf)
                    seq = k * per + j + 1
                    if _check(buf, n, seq) >= 0:
                        head = max(head, seq)
                        if seq > self._acked:
                            lost += 1
                    if n < slot:
                        break
            finally:
                f.close()
        return head, lost
