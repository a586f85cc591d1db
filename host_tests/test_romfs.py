"""ROMFS deployment: the image `make romfs` builds, mounted at /rom under MicroPython 1.29 (WASM).

The app must import from the image alone: MICROPYPATH holds the fakes and tools but not lib/ or
firmware/, /rom/lib is put on sys.path as a ROMFS firmware does, and boot.py adds /rom/firmware.
Then a node on the fakes (host_tests/fakes/node_harness.py) runs a few cycles.
"""

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "build" / "app.romfs"

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(importlib.util.find_spec("mpremote") is None, reason="mpremote missing"),
]

# Runs under tools/mpwasm.mjs with the image next to it (the script's directory is mirrored).
SCRIPT = """
import json
import os
import sys
import vfs

with open(sys.argv[1], "rb") as f:
    image = f.read()
vfs.mount(vfs.VfsRom(image), "/rom")


def walk(d):
    for e in os.ilistdir(d):
        p = d + "/" + e[0]
        yield from walk(p) if e[1] == 0x4000 else (p,)


image_files = sorted(walk("/rom"))
sys.path.insert(0, "/rom/lib")  # a ROMFS firmware puts /rom/lib on sys.path itself
with open(sys.argv[2]) as f:
    exec(f.read(), {})  # boot.py: /rom/firmware before /firmware

import host_codec

host_codec.load()  # the virtual meter's host-only codec modules: the image (like a board) has none

import device  # noqa: F401  (the ESP32 runtime, over the fake machine)
import loop  # noqa: F401
from node_harness import Harness

h = Harness()
for _ in range(3):
    h.cycle()
names = ("node", "config", "kmp", "kmp.link", "kmp.frame", "mqttlink", "device", "loop",
         "payloads", "guard", "timefmt", "ticks", "machine", "virtual_meter", "node_harness")
print("ROMFS " + json.dumps({
    "files": {n: getattr(sys.modules[n], "__file__", None) for n in names},
    "path": sys.path,
    "image_files": image_files,
    "state": h.broker.retained[h.topic("state")].decode(),
    "status": h.broker.retained[h.topic("status")].decode(),
    "truth": {k: h.meter.truth_text(rid) for k, rid in
              (("heat_energy", 0x3C), ("volume", 0x44), ("temp_diff", 0x59))},
}))
"""


@pytest.fixture(scope="module")
def run():
    r = subprocess.run(["make", "-s", "romfs"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return IMAGE.read_bytes()


def test_app_imports_from_rom_and_publishes_exact_values(run, tmp_path):
    assert run.startswith(b"\xd2\xcd\x31")  # the ROMFS header
    (tmp_path / "app.romfs").write_bytes(run)
    script = tmp_path / "romfs_node.py"
    script.write_text(SCRIPT)
    # no lib/, firmware/ or build/ here: the app can only come from /rom
    env = dict(os.environ, MICROPYPATH="tools:host_tests/fakes:host_tests/fakes_esp32")
    r = subprocess.run(
        ["node", "tools/mpwasm.mjs", str(script), str(tmp_path / "app.romfs"),
         str(ROOT / "boot.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("ROMFS ")]
    assert line, r.stdout + r.stderr
    out = json.loads(line[-1][len("ROMFS ") :])
    files = out["files"]
    for name in ("node", "config", "mqttlink", "device", "loop", "guard", "timefmt"):
        assert files[name] == "/rom/firmware/%s.mpy" % name
    assert files["kmp"] == "/rom/lib/kmp/__init__.mpy"
    for name in ("link", "frame"):
        assert files["kmp." + name] == "/rom/lib/kmp/%s.mpy" % name
    for name in ("payloads", "ticks"):
        assert files[name] == "/rom/lib/%s.mpy" % name
    # the fakes and the virtual meter from the normal path
    assert files["machine"].endswith("host_tests/fakes_esp32/machine.py")
    assert files["virtual_meter"].endswith("tools/virtual_meter.py")
    assert files["node_harness"].endswith("host_tests/fakes/node_harness.py")
    image = out["image_files"]  # build/lib and build/firmware, .mpy only
    assert "/rom/firmware/node.mpy" in image and "/rom/lib/kmp/link.mpy" in image
    assert all(f.startswith(("/rom/lib/", "/rom/firmware/")) for f in image)
    assert all(f.endswith(".mpy") for f in image)
    path = out["path"]
    assert path.index("/rom/firmware") < path.index("/firmware")
    assert out["status"] == "online"
    state = out["state"]
    for key, text in out["truth"].items():
        assert '"%s":%s' % (key, text) in state
