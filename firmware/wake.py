# One wake of a battery node (config battery.deep_sleep): read the meter with Wi-Fi still off,
# then connect Wi-Fi with what RTC memory cached, publish, disconnect cleanly (no last will on a
# planned sleep) and say how long to deep sleep. The whole wake has a deadline; a reading that
# cannot be published stays in the flash buffer and Wi-Fi is retried with backoff.
# BATTERY.md 4.2-4.6 has the numbers behind this order.

from timefmt import clock_known, seconds_to_next

# Retained commands arrive right after SUBSCRIBE; this is how long a wake listens for them.
_CMD_LISTEN_MS = 300
_MIN_SLEEP_MS = 1000
# After the DISCONNECT: lwIP sends asynchronously, so switching Wi-Fi off at once can lose the
# DISCONNECT and the last QoS 0 diag, and the broker would then publish the "offline" will
# between wakes. A short, bounded pause lets them leave.
_FLUSH_MS = 100
# The RTC drifts in deep sleep: NTP again when the last sync is this old (and at a cold start);
# after a failed try, not before _NTP_RETRY_S (each try costs up to a second of radio).
_RESYNC_S = 86400
_NTP_RETRY_S = 3600


def restore(node, state):
    """Carry what the node learned before the sleep into the fresh node of this wake."""
    node.uptime_base_s = state.elapsed_s
    state.to_guard(node.guard, node.totals)
    if state.serial:
        node.set_identity(state.meter_type, state.sw_revision or None, state.serial)
    if state.interval_s:
        node.interval = state.interval_s
    node.skip_reads = state.skip_reads
    node.no_answer_streak = state.no_answers
    if state.no_answers:
        node.meter_reachable = False  # still, until a read says otherwise
    node.stay_awake = state.stay_awake
    if state.identity_at:  # a swapped meter is looked for a day after the serial was read
        node.identity_at = state.identity_at
    if state.budget is not None:  # the day's exchanges, not just this wake's
        node.budget.restore(state.budget)


def remember(node, state):
    """What the next wake needs, into the RTC state (saved by the caller)."""
    state.from_guard(node.guard, node.totals)
    if node.serial is not None:
        state.serial = node.serial
        state.meter_type = node.meter_type
        state.sw_revision = node.sw_revision or ""
    state.interval_s = node.interval if node.interval != node.cfg["update_interval"] else 0
    state.skip_reads = node.skip_reads
    state.no_answers = node.no_answer_streak
    state.stay_awake = node.stay_awake
    if node.buffer is not None:
        state.buffered = node.buffer.pending()
    state.budget = node.budget.saved()
    state.identity_at = node.identity_at or 0


def run(node, state, hw, log=print, save=None):
    """One wake. hw: the board (clock, wall_time(), wifi_connect(state, deadline_ms),
    sync_clock(), wifi_off(), stay_awake_pin(), feed()); save(): writes state to RTC memory
    now (the reading is held there while it is published). Returns milliseconds to deep sleep,
    or None when the node must stay awake (a stay_awake command or the maintenance pin)."""
    cfg = node.cfg
    battery = cfg["battery"]
    clock = hw.clock
    t0 = clock.ticks_ms()
    deadline = clock.ticks_add(t0, battery["wake_deadline_s"] * 1000)
    if not state.fresh:
        state.wakes += 1
    restore(node, state)
    known_hash = state.units_hash if state.discovery_published else None
    held = state.held_reading([s[0] for s in node.sensors])
    if held is not None:
        # The last wake was reset while publishing (the watchdog, a crash):
        # its reading goes to the flash buffer and out on history.
        log("wake: keeping the reading of a wake that did not finish")
        node.keep(held)
        state.reading = None
        if save is not None:
            save()  # kept once: a reset later in this wake must not buffer it again

    # 1. The meter first, radio off: the serial exchange runs at CPU-only current.
    node.cycles += 1
    try:
        node.take_reading()
    except Exception as e:  # MemoryError included: count it, keep going to the sleep
        node._error("wake read: %s: %s" % (type(e).__name__, e))
    if node.pending is not None and save is not None and state.hold_reading(*node.pending):
        save()  # from here until it is on the broker or in the buffer, a reset cannot lose it
    from fingerprint import discovery_hash

    announced_hash = discovery_hash(node)
    if known_hash is not None and (announced_hash == known_hash or not node.units):
        # announced on an earlier wake and nothing changed since; or the meter did not answer
        # this wake: what was announced stands
        node.discovery_sent = True

    # 2. The network, unless backing off after failed wakes.
    published = announced = False
    elapsed = state.elapsed_s + clock.ticks_diff(clock.ticks_ms(), t0) // 1000
    if elapsed >= state.net_retry_at:
        hw.feed()
        if hw.wifi_connect(state, deadline):
            since = elapsed - state.clock_synced_at
            if (not state.clock_synced_at or since >= _RESYNC_S
                    or (since >= _NTP_RETRY_S and not clock_known(hw.wall_time()))):  # fmt: skip
                if hw.sync_clock():  # a cold start, a day since the last sync, or a retry
                    state.clock_synced_at = max(1, elapsed)
                else:  # as if synced a little under a day ago: the next try in an hour
                    state.clock_synced_at = max(1, elapsed - _RESYNC_S + _NTP_RETRY_S)
            left_s = clock.ticks_diff(deadline, clock.ticks_ms()) // 1000
            node.mqtt.timeout_s = max(1, min(10, left_s))
            try:
                published = node.publish()
                if node.pending is None:
                    _release(state, save)  # on the broker or in the buffer now
                announced = node.discovery_sent  # before a command in the window changes it
                if published:
                    _listen_for_commands(node, clock, deadline)
            except Exception as e:
                node._error("wake publish: %s: %s" % (type(e).__name__, e))
            session = node.mqtt.connected
            node.mqtt.close()  # clean DISCONNECT: a planned sleep is not a failure
            if session:
                clock.sleep_ms(_FLUSH_MS)  # let it (and the last diag) leave before the radio
        else:
            node._error("wifi: not connected within the wake deadline")
        hw.wifi_off()
    if node.pending is not None:
        node.keep(node.pending)  # not published: it waits in the flash buffer
        node.pending = None
    _release(state, save)

    # 3. Backoff for the radio after a failed wake; the meter is still read on schedule.
    if published:
        state.wake_failures = 0
        state.backoff_s = 0
        state.net_retry_at = 0
        if node.units or not state.discovery_published:
            # the hash of what this wake's discovery said, also when a command came after it
            # (a wake the meter did not answer changes nothing once something was announced;
            # before the meter's first answer that is the diagnostic entities)
            state.discovery_published = announced
            state.units_hash = announced_hash if announced else 0
    elif elapsed >= state.net_retry_at:
        state.wake_failures += 1
        state.backoff_s = min(battery["max_backoff_s"],
                              max(node.paced_interval(), state.backoff_s * 2))  # fmt: skip
        state.net_retry_at = elapsed + state.backoff_s
    remember(node, state)

    # 4. Sleep until the next slot, counting this wake's time against the interval.
    awake_ms = clock.ticks_diff(clock.ticks_ms(), t0)
    node.last_cycle_ms = awake_ms
    if node.stay_awake or hw.stay_awake_pin():
        state.elapsed_s += awake_ms // 1000
        return None
    interval = node.next_interval()  # stretched by the read budget after the setup window
    if cfg["align"]:
        sleep_ms = seconds_to_next(hw.wall_time(), interval, True) * 1000
    else:
        sleep_ms = interval * 1000 - awake_ms
    sleep_ms = max(_MIN_SLEEP_MS, sleep_ms)
    state.elapsed_s += (awake_ms + sleep_ms) // 1000
    log("wake: %d ms awake, published=%s, sleeping %d s" % (awake_ms, published, sleep_ms // 1000))
    return sleep_ms


def _release(state, save):
    """The held reading is on the broker or in the buffer: from now on a reset (history, diag,
    the command window, the DISCONNECT, Wi-Fi off) must not buffer it a second time."""
    if state.reading is not None:
        state.reading = None
        if save is not None:
            save()


def _listen_for_commands(node, clock, deadline):
    """A retained command (e.g. {"stay_awake": true}) comes right after SUBSCRIBE."""
    until = clock.ticks_add(clock.ticks_ms(), _CMD_LISTEN_MS)
    if clock.ticks_diff(deadline, until) < 0:
        until = deadline
    while clock.ticks_diff(until, clock.ticks_ms()) > 0 and node.mqtt.connected:
        node.mqtt.poll()
        clock.sleep_ms(20)
