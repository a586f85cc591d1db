# kmptool read / serial / type over a real pty with pyserial at 1200 8N2, against the virtual
# MULTICAL (paced like a real line, echoing like an IR head).

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from kmpsim import Simulator

ROOT = Path(__file__).resolve().parent.parent
KMPTOOL = str(ROOT / "tools" / "kmptool.py")


def kmptool(*args, timeout=60):
    return subprocess.run(
        [sys.executable, KMPTOOL, *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def sim():
    with Simulator(echo=True, stray_zeros=0.3, time_scale=0) as s:
        yield s


def test_read_seven_sensors_json(sim):
    r = kmptool("read", "--port", sim.device, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout, parse_float=Decimal)
    got = {reg["name"]: reg for reg in out["registers"]}
    assert set(got) == {"heat_energy", "power", "temp1", "temp2", "temp_diff", "flow", "volume"}
    for reg in out["registers"]:
        assert str(reg["value"]) == sim.truth_text(reg["rid"])
        assert reg["unit_code"] == sim.truth(reg["rid"])[0]
    assert out["missing"] == [] and out["link"]["requests"] == 1


def test_read_by_name_and_id_table(sim):
    r = kmptool("read", "--port", sim.device, "heat_energy", "0x3EC", "1002", "60000")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["heat_energy", sim.truth_text(0x3C)]
    assert lines[1].split()[:2] == ["hour_counter", sim.truth_text(0x3EC)]
    assert lines[3].split() == ["0xEA60", "unsupported"]
    assert lines[-1].startswith("link: ")


def test_serial_and_type(sim):
    r = kmptool("serial", "--port", sim.device)
    assert r.returncode == 0 and r.stdout.strip() == "67051653"
    r = kmptool("type", "--port", sim.device, "--json")
    assert json.loads(r.stdout) == {
        "meter_type": 0x0403,
        "meter_type_hex": "0x0403",
        "meter_model": "KMP meter, type 0x0403",
        "sw_revision": "K6",
    }


def test_asleep_meter_exits_1_with_a_hint():
    with Simulator(asleep=True, echo=True, pace=False) as s:
        r = kmptool("serial", "--port", s.device, "--retries", "0", "--timeout-ms", "300")
    assert r.returncode == 1
    assert "no answer from the meter" in r.stderr and "IR head" in r.stderr


@pytest.mark.parametrize("cmd", ["read", "serial", "type"])
def test_a_missing_port_is_one_clear_line(cmd, tmp_path):
    r = kmptool(cmd, "--port", str(tmp_path / "ttyUSB9"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert "cannot open %s" % (tmp_path / "ttyUSB9") in r.stderr and "IR head" in r.stderr


def test_a_register_the_meter_lacks_is_named(sim):
    r = kmptool("read", "--port", sim.device, "0xEA60")
    assert r.returncode == 1 and "None" not in r.stderr
    assert "the meter answered without 0xEA60: it does not have it" in r.stderr


def test_unknown_register_name_is_a_usage_error(sim):
    r = kmptool("read", "--port", sim.device, "heat_enrgy")
    assert r.returncode == 2 and "unknown register 'heat_enrgy'" in r.stderr


def test_log_formats_show_the_exponent_and_sign_decoded_from_siex():
    import kmptool

    # GetLogLastPresent-style payload: one register 0x0056 (unit 37, 2 bytes, SiEx 0xC2:
    # negative, exponent -2), one record of 150 -> -1.50.
    data = bytes((1, 1, 0x10, 0xF3, 0x00, 0x56, 37, 2, 0xC2, 0, 150, 0x10, 0xF5, 0x11, 0x02, 0))
    out = kmptool.application_json(0xA0, data)
    assert out["formats"] == [{"rid": 0x56, "unit_code": 37, "nob": 2, "siex": "0xC2",
                               "exponent": -2, "negative": True}]  # fmt: skip
    assert out["records"][0]["mantissas"] == {"86": -150}
