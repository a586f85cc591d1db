"""Deploy smoke test: mpremote against a fake MicroPython 1.29 board on a pty.

The fake board is tools/fake_board.mjs (the WASM REPL) with the pty master as its
stdin/stdout; mpremote talks to the slave end like to /dev/ttyUSB0. No socat needed.
"""

import importlib.util
import os
import select
import shutil
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOARD = ROOT / "tools" / "fake_board.mjs"
WASM_PKG = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("node") is None, reason="node not installed"),
    pytest.mark.skipif(not WASM_PKG.is_dir(), reason="node_modules missing: run `npm ci`"),
    pytest.mark.skipif(importlib.util.find_spec("mpremote") is None, reason="mpremote missing"),
    pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pty support"),
]


@pytest.fixture
def board(tmp_path):
    """Start the fake board on a fresh pty; yield the device path for mpremote."""
    master, slave = os.openpty()
    tty.setraw(slave)
    log = open(tmp_path / "board.log", "wb")
    proc = subprocess.Popen(["node", str(BOARD)], stdin=master, stdout=master, stderr=log, cwd=ROOT)
    try:
        # Wait for the REPL banner (read on the slave side, as a serial client would).
        seen, deadline = b"", time.monotonic() + 15
        while b">>> " not in seen and time.monotonic() < deadline and proc.poll() is None:
            if select.select([slave], [], [], 0.2)[0]:
                seen += os.read(slave, 4096)
        assert b">>> " in seen, f"fake board did not start: {seen!r}"
        yield os.ttyname(slave)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        log.close()
        os.close(slave)
        os.close(master)


def mpremote(dev, *args, cwd):
    r = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", dev, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, f"mpremote {args} -> rc {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def make_lib(tmp_path):
    """A small stand-in for the real lib/ tree (replace with the real build later)."""
    pkg = tmp_path / "lib" / "demo_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("VERSION = (0, 1)\n")
    (pkg / "util.py").write_text(
        "import sys\n\ndef answer():\n    return '%s %d' % (sys.implementation.name, 42)\n"
    )
    (tmp_path / "lib" / "flat.py").write_text("X = 7\n")
    return tmp_path


def test_cp_r_lib_and_import(board, tmp_path):
    src = make_lib(tmp_path)
    out = mpremote(
        board,
        "cp",
        "-r",
        "lib",
        ":",
        "+",
        "exec",
        "import demo_pkg.util, flat; print('ANSWER', demo_pkg.util.answer(), flat.X)",
        cwd=src,
    )
    assert "ANSWER micropython 42 7" in out


def test_recopy_is_up_to_date_and_ls_rm(board, tmp_path):
    src = make_lib(tmp_path)
    mpremote(board, "cp", "-r", "lib", ":", cwd=src)
    out = mpremote(board, "cp", "-r", "lib", ":", "+", "ls", ":lib/demo_pkg", cwd=src)
    assert "Up to date: ./lib/flat.py" in out
    assert "util.py" in out
    out = mpremote(board, "rm", ":lib/flat.py", "+", "ls", ":lib", cwd=src)
    listing = out.split("ls :lib", 1)[1]
    assert "flat.py" not in listing
    assert "demo_pkg/" in listing


def test_device_error_gives_nonzero_exit(board, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "mpremote", "connect", board, "exec", "import no_such_mod"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "no module named 'no_such_mod'" in r.stdout + r.stderr


def make_flash(board):
    r = subprocess.run(["make", "-s", "flash", "PORT=" + board], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_make_flash_deploys_the_real_build(board, tmp_path):
    # The real deploy path: `make flash` (build with mpy-cross, then mpremote cp) to the fake
    # board, then the compiled modules import there and decode a frame.
    make_flash(board)
    check = (
        "exec(open('boot.py').read())\n"
        "import kmp.frame, kmp.records, kmp.link, kmp.meters, node, config, guard, loop, mqttlink\n"
        "import probe\n"
        "import announce, commands, history, wake, rtcstate, settings  # (no machine here)\n"
        "a = kmp.frame.FrameAssembler()\n"
        "a.expect(0x3F, 0x10)\n"
        "a.feed(bytes.fromhex('403f10003c080443000030397fd00d'))\n"
        "print('DEPLOYED', kmp.records.parse_registers(a.payload())[0].text())\n"
        "import os\n"
        "print('FILES', sorted(os.listdir('/')))\n"
        "print('KMP', sorted(os.listdir('/lib/kmp')))\n"
    )
    out = mpremote(board, "exec", check, cwd=tmp_path)
    assert "DEPLOYED 12.345" in out
    kmp = out.split("KMP", 1)[1]
    for name in ("strict", "logger", "messages"):  # host-only: not on the board
        assert name + ".mpy" not in kmp
    files = out.split("FILES", 1)[1].split("KMP", 1)[0]
    for name in ("boot.py", "main.py", "config.json", "lib", "firmware"):
        assert "'%s'" % name in files
    out = mpremote(board, "ls", ":firmware", "+", "ls", ":lib/kmp", cwd=tmp_path)
    assert "node.mpy" in out and "frame.mpy" in out and ".py" not in out.replace(".mpy", "")


def test_make_flash_removes_what_an_earlier_flash_left(board, tmp_path):
    # A stale source copy would win over the new build (.py before .mpy in one directory), a
    # module moved out of lib/ would shadow its new copy in /firmware: flash clears both, and
    # keeps a library of the user's in /lib.
    old = tmp_path / "old"
    (old / "firmware").mkdir(parents=True)
    (old / "lib" / "kmp").mkdir(parents=True)
    (old / "firmware" / "node.py").write_text("raise ImportError('stale node.py')\n")
    (old / "firmware" / "gone.mpy").write_bytes(b"M")
    (old / "lib" / "kmp" / "link.py").write_text("raise ImportError('stale link.py')\n")
    (old / "lib" / "payloads.py").write_text("raise ImportError('stale payloads.py')\n")
    (old / "lib" / "users_lib.py").write_text("X = 1\n")
    mpremote(board, "cp", "-r", "firmware", ":", "+", "cp", "-r", "lib", ":", cwd=old)
    make_flash(board)
    check = (
        "exec(open('boot.py').read())\n"
        "import os, node, kmp.link, payloads, users_lib\n"
        "print('FROM', node.__file__, kmp.link.__file__, payloads.__file__, users_lib.X)\n"
        "print('FIRMWARE', sorted(os.listdir('/firmware')))\n"
    )
    out = mpremote(board, "exec", check, cwd=tmp_path)
    assert "FROM /firmware/node.mpy /lib/kmp/link.mpy /lib/payloads.mpy 1" in out
    listing = out.split("FIRMWARE", 1)[1]
    assert "gone.mpy" not in listing and "node.py'" not in listing


def test_device_clean_knows_every_top_level_name_in_lib():
    namespace = {}
    src = (ROOT / "tools" / "device_clean.py").read_text()
    exec(compile(src.split("\n\ndef remove", 1)[0], "device_clean.py", "exec"), namespace)
    ours = sorted(
        p.stem if p.suffix == ".py" else p.name
        for p in (ROOT / "lib").iterdir()
        if p.suffix == ".py" or (p / "__init__.py").is_file()
    )
    assert sorted(namespace["APP_LIB"]) == ours
