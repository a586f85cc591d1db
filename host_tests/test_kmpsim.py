# tools/kmpsim.py on real pseudo-terminals: a pyserial client at 1200 8N2 gets correct answers,
# paced responses take at least their wire time, echo comes first, faults show, the thread and
# the CLI stop cleanly. Values are frozen (time_scale=0) wherever answers are compared to truth.

import os
import select
import signal
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest
import serial

import kmpsim
import virtual_meter as vm
from kmp import frame, messages, strict
from kmp.link import MeterLink

ROOT = Path(__file__).resolve().parent.parent
SEVEN = [vm.E1, vm.POWER, vm.T1, vm.T2, vm.TDIFF, vm.FLOW, vm.V1]
BYTE_S = 11 / 1200  # 8N2 at 1200 baud


def open_client(device, timeout=1.0):
    return serial.Serial(device, 1200, bytesize=8, parity="N", stopbits=2, timeout=timeout)


def read_response(port, deadline_s=2.0):
    """Bytes up to and including the stop byte of the first 0x40 frame (echo and zeros kept)."""
    got = bytearray()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        b = port.read(1)
        if b:
            got += b
            if b == b"\r" and 0x40 in got:
                return bytes(got)
    raise AssertionError("no complete response within %.1f s, got %s" % (deadline_s, got.hex()))


def response_frame(raw):
    return raw[raw.index(0x40) :]


@pytest.fixture
def sim_factory():
    sims = []

    def make(**kw):
        kw.setdefault("time_scale", 0)
        kw.setdefault("latency_ms", (0, 0))
        sim = kmpsim.Simulator(**kw).start()
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        sim.stop()
        assert not sim.running and sim.error is None


def test_registers_type_and_serial_over_a_pty(sim_factory):
    sim = sim_factory(pace=False)
    assert sim.device.startswith("/dev/")
    with open_client(sim.device) as port:
        for rids in (SEVEN, list(vm.DEFAULT_REGISTERS[8:16]), [vm.SERIAL_NO, 0x1234, vm.HOURS]):
            port.write(frame.request_get_registers(rids))
            f = strict.decode_frame(read_response(port), frame.START_FROM_METER, 0x3F, 0x10)
            regs = messages.parse_registers(f.data)
            assert [r.rid for r in regs] == [r for r in rids if r != 0x1234]
            for reg in regs:
                assert (reg.unit, reg.mantissa, reg.exponent) == sim.truth(reg.rid)
        port.write(frame.request_get_type())
        assert read_response(port).hex() == "403f0104030b1bf96f430d"
        port.write(frame.request_get_serial())
        f = strict.decode_frame(read_response(port))
        assert messages.parse_serial(f.data) == 67051653
    c = sim.counters()
    assert c["requests"] == c["responses"] == 5 and c["corrupted"] == 0


def test_pacing_takes_at_least_the_wire_time(sim_factory):
    sim = sim_factory(pace=True)
    with open_client(sim.device) as port:
        req = frame.request_get_type()
        t0 = time.monotonic()
        port.write(req)
        raw = read_response(port)
        elapsed = time.monotonic() - t0
    assert raw.hex() == "403f0104030b1bf96f430d"
    # 11 bytes at 11 bits each cannot arrive in less than 11 byte times (~101 ms).
    assert elapsed >= len(raw) * BYTE_S


def test_latency_delays_the_response(sim_factory):
    sim = sim_factory(pace=False, latency_ms=(150, 150))
    with open_client(sim.device) as port:
        t0 = time.monotonic()
        port.write(frame.request_get_serial())
        read_response(port)
        assert time.monotonic() - t0 >= 0.150


def test_echo_comes_first(sim_factory):
    sim = sim_factory(pace=True, echo=True, latency_ms=(20, 40))
    req = frame.request_get_registers([vm.E1, vm.T1])
    with open_client(sim.device) as port:
        port.write(req)
        raw = read_response(port)
    assert raw.startswith(req)
    f = strict.decode_frame(raw[len(req) :], frame.START_FROM_METER)
    assert [r.rid for r in messages.parse_registers(f.data)] == [vm.E1, vm.T1]


def test_silence_when_asleep_or_bad_crc_then_answers(sim_factory):
    sim = sim_factory(pace=False, asleep=True)
    with open_client(sim.device, timeout=0.2) as port:
        port.write(frame.request_get_type())
        assert port.read(64) == b""
        sim.line.asleep = False  # switched at run time
        port.write(bytes.fromhex("803f1001003cb25e0d"))  # bad CRC: the meter stays silent
        assert port.read(64) == b""
        port.write(b"\x00\x55" + frame.request_get_type())  # garbage before a good request
        assert read_response(port).hex() == "403f0104030b1bf96f430d"
    c = sim.counters()
    assert c["requests"] == 3 and c["responses"] == 1 and c["dropped"] == 2


def test_stray_zeros_and_corruption_reach_the_client(sim_factory):
    sim = sim_factory(pace=False, stray_zeros=1.0, corrupt_rate=1.0, seed=4)
    with open_client(sim.device, timeout=0.1) as port:
        port.write(frame.request_get_serial())
        raw = b""
        while True:  # until the line has been quiet for 100 ms
            chunk = port.read(64)
            if not chunk:
                break
            raw += chunk
    assert raw[0] == 0 and raw[-1] == 0
    assert sim.counters()["corrupted"] == 1
    assert raw[1:-1] != bytes.fromhex("403f0203ff20853d780d")


def test_values_evolve_with_time_scale(sim_factory):
    sim = sim_factory(pace=False, time_scale=36000)
    with open_client(sim.device) as port:
        port.write(frame.request_get_registers([vm.HOURS, vm.E1]))
        first = messages.parse_registers(strict.decode_frame(read_response(port)).data)
        time.sleep(0.2)  # two hours of simulated time
        port.write(frame.request_get_registers([vm.HOURS, vm.E1]))
        second = messages.parse_registers(strict.decode_frame(read_response(port)).data)
    assert second[0].mantissa >= first[0].mantissa + 1
    assert second[1].mantissa > first[1].mantissa


def test_meter_link_through_pyserial_echo_and_zeros(sim_factory):
    # The node's link code over the host UART adapter, as `kmptool.py read` uses it.
    from host.serial_uart import SerialUart

    sim = sim_factory(pace=True, echo=True, stray_zeros=0.5, latency_ms=(40, 150))
    uart = SerialUart(sim.device)
    try:
        res = MeterLink(uart).read(SEVEN)
    finally:
        uart.close()
    assert res.error is None and sorted(res.values) == sorted(SEVEN)
    for rid, reg in res.values.items():
        assert (reg.unit, reg.mantissa, reg.exponent) == sim.truth(rid)


def test_serves_a_given_port():
    # port=: the simulator opens a device with pyserial; here the slave of a pty we hold.
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with kmpsim.Simulator(port=os.ttyname(slave), pace=False, time_scale=0) as sim:
            os.write(master, frame.request_get_serial())
            got = b""
            end = time.monotonic() + 2
            while not got.endswith(b"\r") and time.monotonic() < end:
                r, _, _ = select.select([master], [], [], 0.1)
                if r:
                    got += os.read(master, 64)
            assert got.hex() == "403f0203ff20853d780d"
            assert sim.device == os.ttyname(slave)
        assert not sim.running
    finally:
        os.close(master)
        os.close(slave)


def test_start_stop_context_and_thread():
    before = threading.active_count()
    sim = kmpsim.Simulator(time_scale=0)
    with sim:
        assert sim.running and os.path.exists(sim.device)
        with pytest.raises(RuntimeError):
            sim.start()
    assert not sim.running and threading.active_count() == before
    sim.stop()  # a second stop is harmless


def test_meter_and_options_are_used():
    meter = vm.VirtualMeter(serial=19088743, energy_unit=vm.ENERGY_KWH)
    sim = kmpsim.Simulator(meter=meter, echo=True, omit=(vm.T1,), latency_ms=(1, 2))
    assert sim.meter is meter and sim.line.meter is meter
    assert sim.line.echo and sim.line.omit == (vm.T1,) and sim.line.latency_ms == (1, 2)
    assert sim.device is None and not sim.running


def _read_line(stream, deadline_s):
    end = time.monotonic() + deadline_s
    buf = b""
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        assert left > 0, "no line on stdout within %.1f s, got %r" % (deadline_s, buf)
        r, _, _ = select.select([stream], [], [], left)
        if r:
            chunk = os.read(stream.fileno(), 1)
            assert chunk, "stdout closed, got %r" % buf
            buf += chunk
    return buf.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_device_and_stops_on_signal(sig):
    cmd = [sys.executable, str(ROOT / "tools" / "kmpsim.py"), "--seed", "5", "--no-pace",
           "--latency", "0", "0", "--time-scale", "0", "--energy-unit", "kWh", "--echo"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = _read_line(proc.stdout, 10)
        assert line.startswith("device: /dev/")
        device = line.split(": ", 1)[1].strip()
        with open_client(device) as port:
            req = frame.request_get_registers([vm.E1])
            port.write(req)
            raw = read_response(port)
            assert raw.startswith(req)  # --echo
            reg = messages.parse_registers(strict.decode_frame(response_frame(raw)).data)[0]
            assert reg.unit == 2 and reg.text() == "342935"  # --energy-unit kWh
        proc.send_signal(sig)
        assert proc.wait(timeout=5) == 0
        err = proc.stderr.read().decode()
        assert "1 request(s), 1 response(s)" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()
        proc.stderr.close()


def test_cli_rejects_bad_options():
    with pytest.raises(SystemExit):
        kmpsim.main(["--zeros", "1.5"])
    with pytest.raises(SystemExit):
        kmpsim.main(["--energy-unit", "Gcal"])
    assert kmpsim.main(["--latency", "50", "10"]) == 2
    assert kmpsim.main(["--", "--latency", "50", "10"]) == 2  # as `kmptool.py simulate -- ...`


def test_cli_main_is_reusable_in_a_thread(capsys):
    # kmptool.py simulate calls main(); from a non-main thread no signal handlers are set, and
    # an unopenable --port fails with status 1 instead of hanging.
    result = []
    t = threading.Thread(target=lambda: result.append(kmpsim.main(["--port", "/nonexistent/tty"])))
    t.start()
    t.join(5)
    assert not t.is_alive() and result == [1]
    assert "cannot open the device" in capsys.readouterr().err
