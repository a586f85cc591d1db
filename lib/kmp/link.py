# A dependable conversation with a meter through an optical head (PROTOCOL.md sections 1, 6-8).
#
# One transaction: the whole request in one write (the meter allows at most 27 ms between request
# bytes), then the response assembled under deadlines: first byte within timeout_ms, then at most
# gap_ms between bytes. After a failure the meter ignores requests for 1.6 s after the last byte
# it heard, so the next request (a retry or any other) waits quiet_ms first. The UART is any
# object with write(), any() and readinto(): machine.UART on the ESP32, a pyserial adapter on a
# host, a fake in tests.

from kmp import frame, records
from kmp.errors import BudgetSpent, CrcError, FrameError, KmpError, NoAnswer, PortError

_RX_CHUNK = 32
# At least one byte time after the last response byte before the next request (DOC section 2.1).
_TURNAROUND_MS = 20
# The watchdog is fed at most this often while an exchange waits (feed=).
_FEED_MS = 1000


def wire_ms(nbytes, baud=1200):
    """Milliseconds nbytes take on the wire at 8N2 (11 bits a byte)."""
    return (nbytes * 11000 + baud - 1) // baud


class ReadResult:
    """What one read() got: values by register id, and what could not be read."""

    def __init__(self):
        self.values = {}  # rid -> records.Register
        self.missing = []  # asked, not read this time (failure or absent twice)
        self.unsupported = []  # the meter answers without them: not asked again
        self.error = None  # the last error, when something failed
        self.no_answer = False  # nothing at all was answered this time
        self.port_error = False  # because the port itself failed (PortError)


class MeterLink:
    def __init__(
        self,
        uart,
        address=frame.DEFAULT_ADDRESS,
        timeout_ms=1600,
        gap_ms=300,
        quiet_ms=1600,
        retries=2,
        baud=1200,
        clock=None,
        poll_ms=5,
        feed=None,
    ):
        if clock is None:
            import ticks as clock
        self._uart = uart
        self._clock = clock
        # Called while an exchange or a quiet wait lasts: a silent meter with long timeouts and
        # many retries keeps the link busy for longer than the watchdog allows.
        self._feed = feed
        self.address = address
        self.timeout_ms = timeout_ms
        # ESP32 UARTs hand bytes over in bursts (FIFO threshold or ~10 idle byte times), so the
        # gap allowed between bytes is generous; a stalled response still ends quickly.
        self.gap_ms = gap_ms
        self.quiet_ms = quiet_ms
        self.retries = retries
        # When set, no request goes out once `requests` has reached it (the meter's read
        # budget, set by the node around a read): retries and re-asks stop there.
        self.request_cap = None
        self.baud = baud
        self.poll_ms = poll_ms
        self._asm = frame.FrameAssembler()
        self._rx = bytearray(_RX_CHUNK)
        self._rxview = memoryview(self._rx)
        self._requests = {}  # tuple of rids -> prebuilt request frame (same every cycle)
        self._plan = None  # see _plan_for
        self._plan_rids = None
        self._plan_unsupported = 0
        self._plan_count = 0
        self._last_rx = None  # ticks of the last byte heard
        self._failed_at = None  # ticks of the last failed exchange
        self.unsupported = set()
        self._silent_once = set()  # silent when asked alone once: unsupported if it happens again
        self.requests = 0
        self.responses = 0
        self.timeouts = 0
        self.crc_errors = 0
        self.frame_errors = 0
        self.port_errors = 0
        self.retries_done = 0
        self.bytes_tx = 0
        self.bytes_rx = 0
        self.last_exchange_ms = 0
        self.last_error = None

    def counters(self):
        """Link counters for diagnostics."""
        return {
            "requests": self.requests,
            "responses": self.responses,
            "timeouts": self.timeouts,
            "crc_errors": self.crc_errors,
            "frame_errors": self.frame_errors,
            "port_errors": self.port_errors,
            "retries": self.retries_done,
            "bytes_tx": self.bytes_tx,
            "bytes_rx": self.bytes_rx,
            "last_exchange_ms": self.last_exchange_ms,
            "last_error": self.last_error,
        }

    # -- meter identity ------------------------------------------------------------------------

    def get_type(self):
        """(meter_type, software revision text or None)."""
        return self._transact(
            frame.request_get_type(self.address), frame.CID_GET_TYPE, records.parse_type
        )

    def get_serial(self):
        return self._transact(
            frame.request_get_serial(self.address), frame.CID_GET_SERIAL, records.parse_serial
        )

    # -- registers -----------------------------------------------------------------------------

    def read(self, rids):
        """Read registers, at most 8 a request; returns a ReadResult.

        A register missing from a valid response is asked once more on its own; if the meter
        again answers without it, or says nothing to that request alone (some meters do, for
        registers they lack), it is unsupported and not asked again. no_answer is set only when
        nothing at all was answered.
        """
        result = ReadResult()
        plan = self._plan_for(rids)
        failed = None  # chunks whose exchange failed (a list only when one did)
        heard = False  # the meter said something this cycle
        for chunk, request in plan:
            error = self._read_chunk(chunk, request, result)
            if error is None:
                heard = True
                continue
            if isinstance(error, PortError) or (not heard and isinstance(error, NoAnswer)):
                result.no_answer = not heard
                result.port_error = isinstance(error, PortError)
                result.error = error
                break  # an asleep meter will not answer the next request either
            heard = True
            if not self._silent_alone(chunk, error):
                result.error = error
                if failed is None:
                    failed = []
                failed.append(chunk)
        if len(result.values) < self._plan_count:
            self._retry_missing(plan, result, failed)
        if self._silent_once:
            for rid in result.values:
                self._silent_once.discard(rid)  # it answered: that silence was the link's
        result.unsupported = [rid for rid in rids if rid in self.unsupported]
        return result

    def _plan_for(self, rids):
        """[(chunk, request frame)] for rids less the unsupported ones. Built once and reused
        while the same list is asked and no register turned out unsupported: every cycle asks
        the same registers, so a cycle allocates no request."""
        if (
            self._plan is not None
            and self._plan_rids is rids
            and self._plan_unsupported == len(self.unsupported)
        ):
            return self._plan
        ask = []
        for rid in rids:
            if rid not in self.unsupported and rid not in ask:
                ask.append(rid)
        plan = []
        for i in range(0, len(ask), frame.MAX_REGISTERS_PER_REQUEST):
            chunk = ask[i : i + frame.MAX_REGISTERS_PER_REQUEST]
            plan.append((chunk, self._request(chunk)))
        self._plan = plan
        self._plan_rids = rids
        self._plan_unsupported = len(self.unsupported)
        self._plan_count = len(ask)
        return plan

    def _request(self, chunk):
        key = tuple(chunk)
        request = self._requests.get(key)
        if request is None:
            request = frame.request_get_registers(chunk, self.address)
            self._requests[key] = request
        return request

    def _retry_missing(self, plan, result, failed):
        """Registers absent from a valid response are asked once more on their own; those of
        a failed exchange (or when the meter did not answer at all) are just missing this time."""
        for chunk, _ in plan:
            bad = result.no_answer or result.port_error or (failed is not None and chunk in failed)
            for rid in chunk:
                if rid in result.values or rid in self.unsupported:
                    continue
                if bad:
                    result.missing.append(rid)
                    continue
                error = self._read_chunk([rid], self._request([rid]), result)
                if error is None:
                    if rid not in result.values:
                        self.unsupported.add(rid)
                elif not self._silent_alone([rid], error):
                    result.error = error
                    result.missing.append(rid)

    def _silent_alone(self, chunk, error):
        """A one-register request without any answer, while the meter answered this cycle: the
        second time in a row for that register, the meter lacks it (it gives no reply for it,
        PROTOCOL.md 3.4): True, and it is not asked again. The first time it may have been the
        optical link: False (missing, an error, this once)."""
        if len(chunk) != 1 or not isinstance(error, NoAnswer):
            return False
        rid = chunk[0]
        if rid in self._silent_once:
            self._silent_once.discard(rid)
            self.unsupported.add(rid)
            return True
        self._silent_once.add(rid)
        return False

    def forget_unsupported(self):
        """Ask every register again (after a meter swap or a reboot of the meter)."""
        self.unsupported = set()
        self._silent_once = set()
        self._plan = None

    def _read_chunk(self, chunk, request, result):
        """Ask for chunk; its registers go into result.values. None, or the error."""
        try:
            regs = self._transact(request, frame.CID_GET_REGISTER, records.parse_registers)
        except KmpError as e:
            return e
        for reg in regs:
            if reg.rid in chunk:  # never take a register we did not ask for
                result.values[reg.rid] = reg
        return None

    # -- transactions --------------------------------------------------------------------------

    def _transact(self, request, cid, parse):
        """Send request and parse the response payload, retrying on failure. Raises NoAnswer
        only when no try got anything back, else the last other error."""
        error = None
        for attempt in range(self.retries + 1):
            if self.request_cap is not None and self.requests >= self.request_cap:
                raise error if error is not None else BudgetSpent("read budget used up")
            if attempt:
                self.retries_done += 1
            if self._failed_at is not None:
                self._wait_quiet()  # after any failed exchange, whatever this request is
            try:
                value = parse(self._exchange(request, cid))
                self._failed_at = None
                return value
            except PortError as e:
                self.last_error = "PortError: %s" % e
                raise  # no retry: the port will not be back within this exchange
            except KmpError as e:
                if error is None or not isinstance(e, NoAnswer):
                    error = e
                self.last_error = "%s: %s" % (type(e).__name__, e)
                self._failed_at = self._clock.ticks_ms()
        raise error

    def _exchange(self, request, cid):
        try:
            return self._exchange_on_port(request, cid)
        except OSError as e:  # pyserial's SerialException is one; so is a failing machine.UART
            self.port_errors += 1
            raise PortError("serial port: %s" % (e,))

    def _exchange_on_port(self, request, cid):
        clock = self._clock
        uart = self._uart
        self._drain()
        if self._last_rx is not None:
            wait = _TURNAROUND_MS - clock.ticks_diff(clock.ticks_ms(), self._last_rx)
            if wait > 0:
                clock.sleep_ms(wait)
        uart.write(request)
        self.requests += 1
        self.bytes_tx += len(request)
        start = clock.ticks_ms()
        # Our own request needs time to leave the UART before the meter's clock starts.
        first_byte_ms = self.timeout_ms + wire_ms(len(request), self.baud)
        asm = self._asm
        asm.expect(self.address, cid)
        view = self._rxview
        last = fed = start
        feed = self._feed
        try:
            while True:
                n = uart.any()
                if n:
                    got = uart.readinto(view[: min(n, _RX_CHUNK)]) or 0
                    if got:
                        now = clock.ticks_ms()
                        self.bytes_rx += got
                        self._last_rx = now
                        was_in_frame = asm.in_frame
                        used = asm.feed(view[:got])
                        if asm.in_frame or asm.done or was_in_frame:
                            last = now
                        if asm.done:
                            if used < got:
                                self._last_rx = now  # trailing bytes: dropped by the next drain
                            break
                        continue
                now = clock.ticks_ms()
                if asm.in_frame:
                    if clock.ticks_diff(now, last) > self.gap_ms:
                        # Bytes came but no complete frame: garbled, not silence.
                        raise FrameError(
                            "response stopped: no byte for %d ms inside the frame" % self.gap_ms
                        )
                elif clock.ticks_diff(now, start) > first_byte_ms:
                    raise NoAnswer("no answer from the meter within %d ms" % first_byte_ms)
                if feed is not None and clock.ticks_diff(now, fed) >= _FEED_MS:
                    feed()
                    fed = now
                clock.sleep_ms(self.poll_ms)
        except NoAnswer:
            self.timeouts += 1
            raise
        except CrcError:
            self.crc_errors += 1
            raise
        except KmpError:
            self.frame_errors += 1
            raise
        # The link asks only for data answers, so the assembler takes no lone ACK (a stray 0x06
        # before a frame is skipped).
        self.last_exchange_ms = clock.ticks_diff(clock.ticks_ms(), start)
        self.responses += 1
        return asm.payload()

    def _drain(self):
        """Discard bytes left from an earlier exchange (late echo, trailing noise)."""
        uart = self._uart
        while True:
            n = uart.any()
            if not n:
                return
            got = uart.readinto(self._rxview[: min(n, _RX_CHUNK)]) or 0
            if not got:
                return
            self.bytes_rx += got
            self._last_rx = self._clock.ticks_ms()

    def _wait_quiet(self):
        """After a failure the meter discards requests until it has heard nothing for 1.6 s."""
        try:
            self._wait_quiet_on_port()
        except OSError as e:
            self.port_errors += 1
            raise PortError("serial port: %s" % (e,))

    def _wait_quiet_on_port(self):
        clock = self._clock
        deadline = clock.ticks_add(clock.ticks_ms(), 3 * self.quiet_ms)  # a babbling line ends too
        while True:
            self._drain()
            now = clock.ticks_ms()
            since = self._failed_at  # set by the failure that led here
            if self._last_rx is not None and clock.ticks_diff(self._last_rx, since) > 0:
                since = self._last_rx
            left = self.quiet_ms - clock.ticks_diff(now, since)
            if left <= 0 or clock.ticks_diff(deadline, now) <= 0:
                return
            if self._feed is not None:
                self._feed()
            clock.sleep_ms(min(left, 100))
