#!/usr/bin/env node
// A fake MicroPython "board" for testing mpremote-based deploy tooling without hardware:
// the MicroPython 1.29 WASM REPL speaking on stdin/stdout. Put it on a pty, e.g.
//   socat -d pty,raw,echo=0,link=$PWD/ttyFAKE EXEC:"node tools/fake_board.mjs",nofork
// or with the pty master as stdin/stdout (see host_tests/test_deploy.py), then
//   mpremote connect $PWD/ttyFAKE cp -r lib : + exec "import kmp"
// Files live in MEMFS and vanish when the process exits. Exits on EOF of stdin.
// Fixes over a bare REPL so mpremote works:
//  1. soft reset (Ctrl-D) -> print "MPY: soft reboot" and re-init the REPL;
//  2. raw-paste request \x05A\x01 -> answer "R\x00" (unsupported; mpremote falls back);
//  3. map Emscripten errnos to Linux ones in os.* / open (mpremote checks ENOENT == 2);
//  4. os.stat("") stats the cwd, as on a board (else `cp -r lib :` refuses the target).
import path from "node:path";
import { createRequire } from "node:module";

const pkg = "@micropython/micropython-webassembly-pyscript";
const pkgDir = path.dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
const { loadMicroPython } = await import(path.join(pkgDir, "micropython.mjs"));

let outText = "";
let raw = false;
const write = (b) => {
  process.stdout.write(Buffer.from(b));
  outText = (outText + Buffer.from(b).toString("latin1")).slice(-64);
  if (outText.endsWith("raw REPL; CTRL-B to exit\r\n")) raw = true;
};
const mp = await loadMicroPython({ linebuffer: false, stdout: write, stderr: write });

mp.runPython(`exec(compile(${JSON.stringify(`
import os, builtins
_MAP = {44: 2, 20: 17, 54: 20, 31: 21, 55: 39, 28: 22}

def _wrap(fn):
    def w(*a, **k):
        try:
            return fn(*a, **k)
        except OSError as e:
            if e.args and e.args[0] in _MAP:
                raise OSError(_MAP[e.args[0]])
            raise
    return w

for _n in ("stat", "mkdir", "remove", "unlink", "rmdir", "rename", "listdir", "chdir"):
    if hasattr(os, _n):
        setattr(os, _n, _wrap(getattr(os, _n)))
_stat = os.stat
os.stat = lambda p: _stat(p or os.getcwd())
_ilistdir = _wrap(os.ilistdir)

def _ilist(p="."):
    for e in _ilistdir(p):  # (name, type, ino) -> (name, type, ino, size) as on a board
        size = 0
        if e[1] == 0x8000:
            try:
                size = _stat((p or ".") + "/" + e[0])[6]
            except OSError:
                pass
        yield (e[0], e[1], e[2], size)

os.ilistdir = _ilist
builtins.open = _wrap(builtins.open)
`)}, '<fake_board>', 'exec'), {})`);

mp.replInit();
const queue = [];
let busy = false;
let pending = []; // bytes of a possible raw-paste request \x05 A \x01
const RAW_PASTE = [0x05, 0x41, 0x01];
const pump = async () => {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const c = queue.shift();
    if (raw && c === RAW_PASTE[pending.length]) {
      pending.push(c);
      if (pending.length === RAW_PASTE.length) { pending = []; write([0x52, 0x00]); }
      continue;
    }
    const feed = [...pending, c];
    pending = [];
    for (const ch of feed) {
      if (raw && ch === 0x02) raw = false; // Ctrl-B: back to the friendly REPL
      if (await mp.replProcessCharWithAsyncify(ch)) {
        write(Buffer.from("MPY: soft reboot\r\n"));
        mp.replInit();
      }
    }
  }
  busy = false;
};
process.stdin.on("data", (d) => { for (const c of d) queue.push(c); pump(); });
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
