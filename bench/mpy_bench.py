# Memory and CPU of the node under MicroPython 1.29 (WASM), run by bench/bench.py through
# tools/mpwasm.mjs with the .mpy build first on the path (what the ESP32 loads). Prints one JSON
# line. Steps (MPWASM_STEPS): this port's GC frees garbage only at the top level, so heap levels
# are read between steps, after the runner's gc.collect(); allocation per cycle is read inside
# one step, where nothing is collected, as the growth of gc.mem_alloc().
#
# Also importable under CPython for the CPU comparison (cpu_bench).

import gc
import json
import os
import sys
import time

GROWTH_CYCLES = 1000
PER_CYCLE_N = 20
CPU_ROUNDS = 200
CONFIG_ROUNDS = 20

try:
    ticks_us = time.ticks_us
    ticks_diff = time.ticks_diff
except AttributeError:  # CPython

    def ticks_us():
        return time.perf_counter_ns() // 1000

    def ticks_diff(a, b):
        return a - b


def cpu_bench(rounds):
    """Microseconds per frame decode (8-register response) and per state payload."""
    import payloads
    from kmp import frame, records
    from kmp.value import encode_value

    # What the node decodes with (kmp.records); records built here as a meter sends them:
    # RID, unit 8 (GJ), [NoB][SiEx][value].
    data = b"".join(
        bytes((rid >> 8, rid & 0xFF, 8)) + encode_value(123456789, -3, 4)
        for rid in (0x3C, 0x44, 0x4A, 0x50, 0x56, 0x57, 0x59, 0x61)
    )
    wire = frame.encode_frame(0x3F, 0x10, data, frame.START_FROM_METER)
    asm = frame.FrameAssembler()
    t0 = ticks_us()
    for _ in range(rounds):
        asm.expect(0x3F, 0x10)
        asm.feed(wire)
        regs = records.parse_registers(asm.payload())
    decode = ticks_diff(ticks_us(), t0) / rounds
    values = {}
    for key, reg in zip(("heat_energy", "volume", "flow", "power", "temp1", "temp2", "temp_diff"),
                        regs):  # fmt: skip
        values[key] = reg.text()
    t0 = ticks_us()
    for _ in range(rounds):
        payloads.state_payload(values, "2026-11-23T12:00:00Z")
    payload = ticks_diff(ticks_us(), t0) / rounds
    return {"decode_us": decode, "payload_us": payload}


# Written by bench.py before this runs: the recorded meter (record_meter.py), and config.json
# with the cache a normal boot finds (write_config_cache).
REPLAY = "bench/bench_replay.json"
CONFIG_JSON = "bench/bench_config.json"
CONFIG_CACHE = "bench/bench_config.cache"
LIFE_CYCLES = 20


class _World:
    """Everything around the node, all fakes, made before the app's first import: a replayed
    meter behind a fake UART, a fake broker and client, a fake clock, board and timer."""

    def __init__(self):
        from fake_clock import FakeClock
        from fake_mqtt import FakeBroker, FakeMqttClient
        from fake_platform import FakePlatform
        from fake_uart import FakeUart
        from replay_line import ReplayLine

        with open(REPLAY) as f:
            recorded = json.load(f)
        self.config = recorded["config"]
        self.clock = FakeClock()
        self.uart = FakeUart(self.clock, ReplayLine(recorded["frames"]))
        self.broker = FakeBroker()
        self.platform = FakePlatform()
        self._client = FakeMqttClient
        self.flag_cb = None

    def make_client(self, client_id, server, port, user, password, keepalive, tls):
        return self._client(self.broker, client_id, server, port, user, password, keepalive, tls)

    def wall_time(self):
        return 1795435200 + self.clock.now // 1000  # 2026-11-23T12:00:00Z on

    def log(self, text):
        pass

    # the loop's ticker: the timer fires at once, the clock jumps by the interval
    def arm(self, ms, callback):
        self.clock.advance(int(ms))
        callback()

    def cancel(self):
        pass

    def forget_traffic(self):
        self.broker.messages.clear()
        self.broker.retained.clear()
        self.uart.written = bytearray()


def _boot(w, cache=CONFIG_CACHE):
    """The app as a mains ESP32 starts it (board.py), but on the fakes: the config from its
    cache (cache=None: validated, as on the first boot after an edit), the startup modules
    loaded and dropped again, the node wired; in board.start()'s order."""
    import board  # noqa: F401  (startup code: loaded at every boot, dropped by main.py)
    import rtcstate  # noqa: F401
    import settings
    from node import Node

    cfg = settings.load(CONFIG_JSON, cache or "/tmp/no_such.cache", "host")
    from kmp.link import MeterLink
    from lazybuffer import LazyBuffer
    from mqttlink import MqttLink

    try:
        os.mkdir("/tmp/bench_resident")
    except OSError:
        pass
    link = MeterLink(w.uart, clock=w.clock)
    mqtt = MqttLink(w.make_client, cfg, w.clock, w.log)
    node = Node(cfg, link, mqtt, w.clock, w.wall_time, w.platform, w.log,
                LazyBuffer("/tmp/bench_resident", 672))  # fmt: skip
    for name in ("board", "rtcstate", "settings", "jsonfile", "config", "kmp.registers"):
        sys.modules.pop(name, None)
    return node


def _life(w, node):
    """What a mains node goes through: identity, discovery, LIFE_CYCLES readings through the
    loop, two commands, a broker outage with the readings buffered on flash and delivered."""
    import device  # noqa: F401  (the ESP32 runtime: imported here over the fake machine)
    import loop

    def cycles(n):
        loop.run(node, w, loop.Flag(), w.platform, max_cycles=n)
        w.forget_traffic()

    cycles(LIFE_CYCLES)
    w.broker.deliver(node.topic("cmd"), b'{"interval": "15min", "read_now": true}')
    cycles(2)
    w.broker.deliver(node.topic("cmd"), b'{"interval": null}')
    cycles(2)
    w.broker.up = False
    cycles(3)
    w.broker.up = True
    cycles(3)
    return node.buffer.pending()


def steps(app_from=None):
    """app_from: where every app module must have been imported from (romfs_steps)."""
    gc.collect()
    base = gc.mem_alloc()
    yield
    # os (imported above) and binascii are built into the ESP32 firmware, Python wrappers here
    import binascii  # noqa: F401

    import machine  # noqa: F401  (fakes of what the ESP32 firmware has built in)
    import network  # noqa: F401
    from umqtt import simple  # noqa: F401  (frozen into the firmware: its code is in flash)

    world = _World()
    yield
    known = set(sys.modules)
    before = gc.mem_alloc()
    node = _boot(world)
    yield
    after_boot = gc.mem_alloc() - before
    left = _life(world, node)
    world.forget_traffic()
    yield
    resident = gc.mem_alloc() - before
    modules = sorted(name for name in sys.modules if name not in known)
    if app_from is not None:
        _check_imported_from(app_from, modules)
    history = node.history_sent
    del node
    world.broker.clients.clear()  # the fake client's callback is the node's
    yield
    resident_state = resident - (gc.mem_alloc() - before)
    # Fakes and the virtual meter come from source and are test scaffolding: measured apart.
    import host_codec

    host_codec.load()  # what the virtual meter needs beyond the board's kmp
    from node_harness import Harness

    h = Harness()
    h.cycle()
    h.broker.messages.clear()
    yield
    for _ in range(20):  # warm: discovery sent, caches filled
        h.cycle()
        h.broker.messages.clear()
        h.uart.written = bytearray()
    yield
    # Allocation per full cycle, averaged over PER_CYCLE_N cycles (diag goes out every 5th):
    # meter read through the codec and link, payloads, publish to the fake client. Then the
    # fakes' share measured the same way (the meter model advancing, the fake line answering,
    # the fake UART scheduling and handing over the bytes) and taken off.
    n_messages = 0
    a0 = gc.mem_alloc()
    for _ in range(PER_CYCLE_N):
        h.cycle()
        n_messages += len(h.broker.messages)
        h.broker.messages.clear()
    per_cycle_all = (gc.mem_alloc() - a0) // PER_CYCLE_N
    h.uart.written = bytearray()
    yield
    request = h.link._requests[tuple(h.node.rids)]
    buf = bytearray(32)
    a0 = gc.mem_alloc()
    for _ in range(PER_CYCLE_N):
        h.meter.advance(60)
        h.uart.write(request)
        h.clock.advance(2000)
        while h.uart.any():
            h.uart.readinto(buf)
    per_cycle_fakes = (gc.mem_alloc() - a0) // PER_CYCLE_N
    h.uart.written = bytearray()
    yield
    heap = []
    for k in range(GROWTH_CYCLES):
        h.cycle()
        h.broker.messages.clear()
        h.uart.written = bytearray()
        if (k + 1) % 100 == 0:
            yield
            heap.append(gc.mem_alloc())
    cpu = cpu_bench(CPU_ROUNDS)
    out = {
        "resident": resident,
        "resident_state": resident_state,
        "resident_after_boot": after_boot,
        "resident_modules": modules,
        "life_cycles": LIFE_CYCLES + 10,
        "life_history_sent": history,
        "life_left_buffered": left,
        "per_cycle": per_cycle_all - per_cycle_fakes,
        "per_cycle_with_fakes": per_cycle_all,
        "messages_per_cycle": n_messages / PER_CYCLE_N,
        "cycles": GROWTH_CYCLES,
        "growth": heap[-1] - heap[1],
        "heap_series": heap,
        "heap_min": min(heap[1:]),
        "heap_max": max(heap[1:]),
        "base": base,
    }
    out.update(cpu)
    print(json.dumps(out))


def first_boot_steps():
    """Heap after a boot that validates config.json (the first after an edit or an update)."""
    import binascii  # noqa: F401

    import machine  # noqa: F401
    import network  # noqa: F401
    from umqtt import simple  # noqa: F401

    world = _World()
    yield
    before = gc.mem_alloc()
    node = _boot(world, cache=None)
    yield
    out = {"resident_after_first_boot": gc.mem_alloc() - before}
    del node
    yield
    # Time to the validated config at boot: from the cache, and validated with the validator
    # loaded as a boot loads it (dropped after each round). This port's clock ticks in ms.
    import settings

    validator = ("config", "durations", "kmp.registers")
    for key, cache in (("config_cached_us", CONFIG_CACHE),
                       ("config_validated_us", "/tmp/no_such.cache")):  # fmt: skip
        t0 = ticks_us()
        for _ in range(CONFIG_ROUNDS):
            settings.load(CONFIG_JSON, cache, "host")
            for name in validator:
                sys.modules.pop(name, None)
            if cache != CONFIG_CACHE:
                os.remove(cache)  # written by that load: the next round validates again
        out[key] = ticks_diff(ticks_us(), t0) / CONFIG_ROUNDS
        yield
    print(json.dumps(out))


# Built by bench.py (make romfs) before the "romfs" run: build/lib and build/firmware in one image.
ROMFS_IMAGE = "build/app.romfs"
# sys.path entries that hold app modules off the board's layout (source and .mpy trees, any root)
_APP_DIRS = ("lib", "firmware", "build", "build/lib", "build/firmware")


def romfs_steps():
    """steps() with the app imported from a ROMFS image mounted at /rom: .mpy executed in place,
    as on a MicroPython build with a ROMFS partition. On the device the image is flash; here
    its bytes are in the GC heap, so they are read and mounted before steps() takes its
    baseline (kept alive by this frame and the mount), and take no part in what it measures."""
    import vfs

    with open(ROMFS_IMAGE, "rb") as f:
        image = f.read()
    vfs.mount(vfs.VfsRom(image), "/rom")
    _app_path(["/rom/lib", "/rom/firmware"])
    yield
    yield from steps(app_from="/rom/")
    vfs.umount("/rom")
    del image


# Where `make flash` puts the .mpy build on the ESP32 (boot.py adds /firmware to sys.path).
DEVICE_DIRS = ("/lib/", "/firmware/")


def _device_layout():
    """build/lib and build/firmware copied to /lib and /firmware, and only those on sys.path
    for the app: modules get the names and __file__ paths they have on the board (interned
    for good, so they count)."""
    for src, dst in (("build/lib", "/lib"), ("build/firmware", "/firmware")):
        _copy_tree(src, dst)
    _app_path(["/lib", "/firmware"])


def _copy_tree(src, dst):
    try:
        os.mkdir(dst)
    except OSError:
        pass
    for entry in os.ilistdir(src):
        name, kind = entry[0], entry[1]
        if kind == 0x4000:  # a directory (a package)
            _copy_tree(src + "/" + name, dst + "/" + name)
        else:
            with open(src + "/" + name, "rb") as f:
                data = f.read()
            with open(dst + "/" + name, "wb") as f:
                f.write(data)


def _app_path(app_dirs):
    """sys.path: app_dirs first; no other directory may supply an app module. The fakes, the
    virtual meter and bench/ stay on the normal path."""
    keep = []
    for p in sys.path:
        if not any(p == d or p.endswith("/" + d) for d in _APP_DIRS):
            keep.append(p)
    sys.path.clear()
    sys.path.extend(app_dirs + keep)


def _check_imported_from(prefixes, modules):
    """Fail loudly unless the app (node, and every module the life loaded) came from one of
    the prefixes (a str or a tuple of str)."""
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    wrong = []
    for name in sorted(set(modules) | {"node"}):
        where = getattr(sys.modules[name], "__file__", prefixes[0])  # built-ins have none
        if not any(where.startswith(p) for p in prefixes):
            wrong.append("%s from %s" % (name, where))
    if wrong:
        raise RuntimeError("app modules not imported from %s: %s"
                           % (" or ".join(prefixes), ", ".join(wrong)))  # fmt: skip


def write_config_cache(root, config):
    """On CPython: config.json and the cache a device would have made from it, keyed as the
    .mpy build's validator is what the MicroPython run imports."""
    import settings

    path = os.path.join(root, CONFIG_JSON)
    with open(path, "w") as f:
        json.dump(config, f)
    build = os.path.join(root, "build")
    real = settings.validator_files
    settings.validator_files = lambda: [
        os.path.join(build, "firmware", "config.mpy"),
        os.path.join(build, "firmware", "durations.mpy"),
        os.path.join(build, "lib", "kmp", "registers.mpy"),
    ]
    try:
        key = settings.cache_key(path, "host")
    finally:
        settings.validator_files = real
    import config as validator_module

    settings.write(os.path.join(root, CONFIG_CACHE), key,
                    validator_module.validate(config, target="host"))  # fmt: skip


if sys.implementation.name == "micropython":
    if "romfs" in sys.argv:
        MPWASM_STEPS = romfs_steps()
    else:
        _device_layout()
        MPWASM_STEPS = first_boot_steps() if "first-boot" in sys.argv else steps(DEVICE_DIRS)
