#!/usr/bin/env python3
"""kmpsim: the virtual MULTICAL 403 on a serial device, for host programs (CPython only).

  python tools/kmpsim.py [--seed N] [--echo] [--zeros P] [--latency MIN MAX] [--no-pace]
                         [--asleep] [--corrupt P] [--energy-unit GJ|kWh|MWh] [--port DEV]
                         [--time-scale X] [--omit REG]...

Without --port it opens a pseudo-terminal; either way it prints one line `device: PATH` on
stdout, serves KMP requests at 1200 baud 8N2 until SIGINT or SIGTERM, and exits 0. Connect the
node, `kmptool.py read --port PATH`, or any serial program to PATH.
"""

import argparse
import errno
import os
import select
import signal
import sys
import threading
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(_ROOT, "lib"), os.path.join(_ROOT, "tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from kmp import registers  # noqa: E402
from virtual_meter import (  # noqa: E402
    ENERGY_GJ,
    ENERGY_KWH,
    ENERGY_MWH,
    FaultyLine,
    RequestSplitter,
    VirtualMeter,
)

ENERGY_UNITS = {"GJ": ENERGY_GJ, "kWh": ENERGY_KWH, "MWh": ENERGY_MWH}
# The worker never blocks longer than this, so stop() and run-time changes act quickly.
_POLL_S = 0.02


class _Pty:
    """Master side of a new pseudo-terminal; clients open `device` (the slave)."""

    def __init__(self):
        import tty

        self.master, self._slave = os.openpty()
        # Raw mode so the line discipline neither echoes nor translates bytes (0x0D!) before a
        # client has set its own termios. Keeping the slave open also keeps the master from
        # reading EIO while no client has the device open.
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.device = os.ttyname(self._slave)

    def read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return b""
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            time.sleep(timeout)  # no client: nothing to read
            return b""

    def write(self, data):
        # Non-blocking: when nobody drains the pty its buffer fills and the rest is lost, as
        # bytes on an optical line nobody listens to.
        sent = 0
        while sent < len(data):
            try:
                sent += os.write(self.master, data[sent:])
            except (BlockingIOError, OSError):
                break
        return sent

    def close(self):
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class _SerialPort:
    """A real serial device (e.g. a USB serial adapter wired to the node), via pyserial."""

    def __init__(self, port, baud):
        import serial

        self._serial_mod = serial
        self._s = serial.Serial(
            port,
            baud,
            bytesize=serial.EIGHTBITS,
            parity=serial.PARITY_NONE,
            stopbits=serial.STOPBITS_TWO,
            timeout=0,  # reads never block; select() below waits with a deadline
            write_timeout=1.0,
        )
        self.device = port

    def read(self, timeout):
        r, _, _ = select.select([self._s.fileno()], [], [], timeout)
        if not r:
            return b""
        try:
            return self._s.read(self._s.in_waiting or 1)
        except self._serial_mod.SerialException:
            time.sleep(timeout)  # e.g. the far end of a pty went away
            return b""

    def write(self, data):
        try:
            return self._s.write(data) or 0
        except self._serial_mod.SerialTimeoutException:
            return 0

    def close(self):
        self._s.close()


class Simulator:
    """Serves a VirtualMeter behind a FaultyLine on a pty (default) or a serial port.

    meter: a VirtualMeter (default: a new one from seed and energy_unit).
    echo, stray_zeros, latency_ms, asleep, corrupt_rate, omit: FaultyLine options; change them
    at run time through `sim.line`.
    pace: write response bytes one at a time at the line rate (a pty delivers at once; a real
    UART paces itself, so use pace=False with port=).
    time_scale: simulated seconds per wall-clock second (0 freezes the values).
    """

    def __init__(
        self,
        meter=None,
        port=None,
        pace=True,
        baud=1200,
        time_scale=1.0,
        seed=1,
        energy_unit=ENERGY_GJ,
        echo=False,
        stray_zeros=0.0,
        latency_ms=(40, 150),
        asleep=False,
        corrupt_rate=0.0,
        omit=(),
    ):
        self.meter = (
            meter if meter is not None else VirtualMeter(seed=seed, energy_unit=energy_unit)
        )
        self.line = FaultyLine(
            self.meter,
            seed=seed,
            echo=echo,
            stray_zeros=stray_zeros,
            latency_ms=latency_ms,
            asleep=asleep,
            corrupt_rate=corrupt_rate,
            omit=omit,
        )
        self.port = port
        self.pace = pace
        self.baud = baud
        self.time_scale = time_scale
        self.byte_s = 11.0 / baud  # 8N2: start + 8 data + 2 stop bits
        self.splitter = RequestSplitter()
        self.lock = threading.Lock()  # guards meter and line against the worker
        self.device = None
        self.error = None  # the exception that ended the worker, if any
        self._transport = None
        self._thread = None
        self._stop = threading.Event()
        self._pending = []  # [due, seq, kind, data], kept sorted
        self._seq = 0
        self._active = None  # [data, index] of the response being paced out
        self._next_at = 0.0  # when the next paced byte may be complete
        self._busy_until = 0.0  # when the last written byte was complete
        self._last_now = None
        self._carry_ms = 0.0

    # -- life cycle --------------------------------------------------------------------------

    def start(self):
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._transport = _SerialPort(self.port, self.baud) if self.port else _Pty()
        self.device = self._transport.device
        self._stop.clear()
        self._last_now = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="kmpsim", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=2.0):
        """Stop the worker (waits at most timeout seconds) and close the device."""
        self._stop.set()
        thread, self._thread = self._thread, None
        alive = False
        if thread is not None:
            thread.join(timeout)
            alive = thread.is_alive()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if alive:
            raise RuntimeError("kmpsim worker did not stop within %.1f s" % timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    # -- inspection --------------------------------------------------------------------------

    def truth(self, rid):
        with self.lock:
            return self.meter.truth(rid)

    def truth_text(self, rid):
        with self.lock:
            return self.meter.truth_text(rid)

    def counters(self):
        with self.lock:
            line = self.line
            return {
                "requests": line.requests,
                "responses": line.responses,
                "corrupted": line.corrupted,
                "bytes_in": line.bytes_in,
                "bytes_out": line.bytes_out,
                "ignored": self.meter.ignored,
                "dropped": self.splitter.dropped,
            }

    # -- worker ------------------------------------------------------------------------------

    def _run(self):
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                with self.lock:
                    self._advance_clock(now)
                wait = self._emit()
                data = self._transport.read(wait)
                if data:
                    self._receive(data, time.monotonic())
        except Exception as e:  # keep the reason for the owner; the thread must end cleanly
            self.error = e
            print("kmpsim: worker stopped: %s: %s" % (type(e).__name__, e), file=sys.stderr)

    def _advance_clock(self, now):
        # Incremental, so time_scale may change while running; fractions carry over.
        self._carry_ms += (now - self._last_now) * 1000.0 * self.time_scale
        self._last_now = now
        whole = int(self._carry_ms)
        if whole > 0:
            self._carry_ms -= whole
            self.meter.advance_ms(whole)

    def _receive(self, data, now):
        for request in self.splitter.feed(data):
            with self.lock:
                self._advance_clock(now)
                events = self.line.events(request)
            for delay_ms, kind, chunk in events:
                self._seq += 1
                self._pending.append([now + delay_ms / 1000.0, self._seq, kind, chunk])
            self._pending.sort()

    def _emit(self):
        """Write whatever output is due; returns how long the worker may wait for input."""
        while True:
            now = time.monotonic()
            if self._active is None:
                if not self._pending:
                    return _POLL_S
                due, _, kind, data = self._pending[0]
                if due > now:
                    return min(_POLL_S, due - now)
                self._pending.pop(0)
                if kind == "echo" or not self.pace:
                    # An echo streamed in while the request was sent; a real UART's write()
                    # returns only then, so from the master's view it is all there already.
                    self._transport.write(data)
                    self._busy_until = max(self._busy_until, now)
                    continue
                self._active = [data, 0]
                # A byte is complete one byte time after its start bit, never earlier than one
                # byte time after the previous one: at most the physical rate, never faster.
                self._next_at = max(due, self._busy_until) + self.byte_s
            if now < self._next_at:
                return min(_POLL_S, self._next_at - now)
            data, i = self._active
            self._transport.write(data[i : i + 1])
            self._busy_until = time.monotonic()
            self._next_at = self._busy_until + self.byte_s
            i += 1
            if i == len(data):
                self._active = None
            else:
                self._active[1] = i


# -- command line ------------------------------------------------------------------------------


def _probability(text):
    p = float(text)
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError("probability: expected 0..1, got %s" % text)
    return p


def _register(text):
    try:
        return registers.parse_rid(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def build_parser(prog="kmpsim.py"):
    p = argparse.ArgumentParser(prog=prog, description="Virtual Kamstrup MULTICAL 403 (KMP).")
    p.add_argument("--seed", type=int, default=1, help="seed for values and faults (default 1)")
    p.add_argument("--echo", action="store_true", help="echo requests like many IR heads")
    p.add_argument("--zeros", type=_probability, default=0.0, metavar="P",
                   help="probability of a stray 0x00 before / after a response")  # fmt: skip
    p.add_argument("--latency", type=int, nargs=2, default=[40, 150], metavar=("MIN", "MAX"),
                   help="response latency range in ms (default 40 150)")  # fmt: skip
    p.add_argument("--no-pace", action="store_true",
                   help="write responses at once instead of at 1200 baud 8N2")  # fmt: skip
    p.add_argument("--asleep", action="store_true", help="optical eye off: never answer")
    p.add_argument("--corrupt", type=_probability, default=0.0, metavar="P",
                   help="probability a response is damaged (bit flip, lost/extra byte, bad CRC)")  # fmt: skip
    p.add_argument("--energy-unit", choices=sorted(ENERGY_UNITS), default="GJ",
                   help="unit of the energy registers (default GJ)")  # fmt: skip
    p.add_argument("--port", metavar="DEV", help="serve on this serial device instead of a pty")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                   help="simulated seconds per real second (default 1; 0 freezes values)")  # fmt: skip
    p.add_argument("--omit", type=_register, action="append", default=[], metavar="REG",
                   help="answer as if this register were unsupported (repeatable)")  # fmt: skip
    return p


def main(argv=None, prog="kmpsim.py"):
    """Run the simulator until SIGINT/SIGTERM; returns the exit status. Reusable from
    kmptool.py simulate (pass its remaining arguments)."""
    if argv and argv[0] == "--":
        argv = argv[1:]  # what argparse.REMAINDER keeps from `kmptool.py simulate -- ...`
    args = build_parser(prog).parse_args(argv)
    if args.latency[0] < 0 or args.latency[1] < args.latency[0]:
        print("%s: --latency needs 0 <= MIN <= MAX" % prog, file=sys.stderr)
        return 2
    sim = Simulator(
        port=args.port,
        pace=not args.no_pace,
        time_scale=args.time_scale,
        seed=args.seed,
        energy_unit=ENERGY_UNITS[args.energy_unit],
        echo=args.echo,
        stray_zeros=args.zeros,
        latency_ms=tuple(args.latency),
        asleep=args.asleep,
        corrupt_rate=args.corrupt,
        omit=tuple(args.omit),
    )
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        try:
            sim.start()
        except Exception as e:
            print("%s: cannot open the device: %s" % (prog, e), file=sys.stderr)
            return 1
        try:
            return _serve(sim, stop, args, prog)
        finally:
            sim.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(sim, stop, args, prog):
    print("device: %s" % sim.device, flush=True)
    print(
        "%s: virtual MULTICAL 403, serial %d, address 0x%02X, energy in %s, seed %d%s; "
        "stop with Ctrl-C or SIGTERM"
        % (prog, sim.meter.serial, sim.meter.address, args.energy_unit, args.seed,
           "" if sim.pace else ", unpaced"),
        file=sys.stderr,
        flush=True,
    )  # fmt: skip
    try:
        while not stop.wait(0.2):
            if not sim.running:
                break  # the worker failed; sim.error says why
    except KeyboardInterrupt:
        pass
    sim.stop()
    c = sim.counters()
    print(
        "%s: %d request(s), %d response(s), %d corrupted, %d bytes in, %d bytes out"
        % (prog, c["requests"], c["responses"], c["corrupted"], c["bytes_in"], c["bytes_out"]),
        file=sys.stderr,
    )
    return 1 if sim.error else 0


if __name__ == "__main__":
    sys.exit(main())
