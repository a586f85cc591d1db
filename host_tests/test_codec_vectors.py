# All 68 public KMP vectors as golden tests: the codec (lib/kmp) and kmptool decode.

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import kmp_vectors
import kmptool

ROOT = Path(__file__).resolve().parent.parent
VECTORS = kmp_vectors.load(str(ROOT / kmp_vectors.VECTORS_PATH))

# vectors.json layer -> kmptool --layer
TOOL_LAYER = {
    "physical": "physical",
    "datalink": "datalink",
    "datalink_no_crc": "datalink-nocrc",
    "application": "application",
    "register_format": "register",
    "float": "value",
    "value_integer": "integer",
    "logger_timestamp": "logtime",
    "stuffing": "stuffing",
    "crc_input": "crc",
}


def test_all_vectors_present():
    assert len(VECTORS) == 68
    assert sum(1 for v in VECTORS if v.get("crc_valid") is False) == 6


@pytest.mark.parametrize("index", range(len(VECTORS)))
def test_codec_golden(index):
    kmp_vectors.check(VECTORS[index])


def _expects_error(v):
    exp = v["expected"]
    return (
        v.get("crc_valid") is False
        or "error" in exp
        or "strict_behaviour" in exp
        or exp.get("value_pykmp") == "error"
    )


def _tool(v):
    raw = bytes.fromhex(v["hex"])
    layer = TOOL_LAYER[v["layer"]]
    if layer == "physical" and v["direction"] == "response" and raw[:1] == b"\x80":
        return None  # a request-shaped frame labelled response: the CLI auto-detects direction
    if layer == "physical" and "datalink" in v["expected"]:
        return None  # a stuffing example, not a frame
    unit = int(v["expected"]["unit"], 16) if layer == "integer" else 0
    return layer, raw, unit, v["direction"] == "request"


@pytest.mark.parametrize("index", range(len(VECTORS)))
def test_kmptool_decode_golden(index):
    v = VECTORS[index]
    call = _tool(v)
    if call is None:
        pytest.skip("direction-specific vector; covered by test_codec_golden")
    layer, raw, unit, request = call
    if _expects_error(v):
        with pytest.raises(kmptool.KmpError):
            kmptool.decode(raw, layer, unit, request)
        return
    out = kmptool.decode(raw, layer, unit, request)
    out = json.loads(kmptool.exactjson_dumps(out), parse_float=Decimal)
    exp = v["expected"]
    if exp.get("ack"):
        assert out == {"ack": True}
    for key in ("serial", "meter_type", "sw_revision", "datetime"):
        if key in exp:
            want = exp[key]
            if key == "meter_type":
                want = int(want.split()[0], 16)
            assert out[key] == want
    if "software_revision" in exp:
        assert out["sw_revision"] == exp["software_revision"]
    if "crc" in exp and layer == "crc":
        assert out["crc_hex"] == exp["crc"]
    if "stuffed" in exp:
        assert out["stuffed"] == exp["stuffed"].replace(" ", "").lower()
    if "registers" in exp:
        got = out.get("registers", out.get("rids"))
        if v["direction"] == "request":
            assert got == exp["registers"]
        else:
            by_rid = {r["rid"]: r for r in got}
            for want in exp["registers"]:
                r = by_rid[want["rid"]]
                assert r["unit_code"] == int(want["unit"], 16)
                assert Decimal(r["value"]) == Decimal(str(want["value"]).split()[0])
    if layer == "integer":
        if "time" in exp:
            assert out["time"] == exp["time"]
        else:
            assert out["date"] == exp["date"].replace("(20)", "20")
    if layer == "value" and "value" in exp and not isinstance(exp["value"], str):
        assert out["value"] == Decimal(str(exp["value"]))


def test_kmptool_cli_decodes_spaced_hex():
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools/kmptool.py"), "decode", "40 3f 10 00 3c 08 04 42 00 01 e2 1b bf 7e 4a 0d"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout, parse_float=Decimal)
    assert out["address"] == 63 and out["cid"] == 16
    reg = out["registers"][0]
    assert (reg["rid"], reg["unit_code"], reg["unit"]) == (60, 8, "GJ")
    assert str(reg["value"]) == "1234.56"
    assert '"value": 1234.56' in r.stdout  # the exact decimal text, not a float artefact


def test_kmptool_cli_exact_value_text():
    # 04 43 00 00 30 39 with unit GJ reads 12.345 (issue 2).
    payload = bytes.fromhex("003c08") + bytes.fromhex("044300003039")
    wire = kmptool.frame.encode_frame(0x3F, 0x10, payload, kmptool.frame.START_FROM_METER)
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools/kmptool.py"), "decode", wire.hex()],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert '"unit_code": 8, "unit": "GJ"' in r.stdout
    assert '"value": 12.345}' in r.stdout


@pytest.mark.parametrize("hexstr", ["403f10001b7f160411012af024f38a0d", "401b120d", "400d", "zz"])
def test_kmptool_cli_invalid_frame_exits_1_with_one_line(hexstr):
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools/kmptool.py"), "decode", hexstr],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmptool: invalid frame: ")
