#!/usr/bin/env node
// Run a script under real MicroPython 1.29 (official WASM port), like the unix port's
// `micropython script.py`:  node tools/mpwasm.mjs [--trace] script.py [args...]
//   MICROPYPATH=a:b  dirs (relative to cwd) prepended to sys.path and mirrored into MEMFS
//   MPWASM_HEAP=N    initial GC heap in bytes (suffix k/m allowed; the heap auto-grows anyway)
//   --trace          use the sys.settrace build (for mpy-coverage)
// Exit status: 0, 1 on an uncaught exception (traceback on stderr), N for SystemExit(N).
// Files the script writes live in MEMFS only and are not copied back.
// Steps: if the script leaves a generator in the global MPWASM_STEPS, the runner advances it one
// step per top-level call, with gc.collect() run on its own in between. This port's GC only
// frees garbage at the top level (the C stack of a running script is not scanned), so heap
// measurements after gc.collect() are meaningful only between steps.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const pkg = "@micropython/micropython-webassembly-pyscript";
const pkgDir = path.dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
const { loadMicroPython } = await import(path.join(pkgDir, "micropython.mjs"));

let argv = process.argv.slice(2);
const trace = argv[0] === "--trace";
if (trace) argv = argv.slice(1);
if (argv.length < 1) {
  process.stderr.write("usage: node tools/mpwasm.mjs [--trace] script.py [args...]\n");
  process.exit(2);
}
const m = /^(\d+)([kKmM]?)$/.exec(process.env.MPWASM_HEAP || "1m");
if (!m) { process.stderr.write("mpwasm: bad MPWASM_HEAP\n"); process.exit(2); }
const heapsize = Number(m[1]) * ({ "": 1, k: 1024, m: 1048576 })[m[2].toLowerCase()];

// stdout/stderr arrive byte by byte (linebuffer: false); buffer per line, keep the order.
const bufs = { 1: [], 2: [] };
const flush = (fd) => {
  if (bufs[fd].length) (fd === 1 ? process.stdout : process.stderr).write(Buffer.from(bufs[fd]));
  bufs[fd] = [];
};
const out = (fd) => (b) => {
  flush(3 - fd);
  for (const c of b) bufs[fd].push(c);
  if (bufs[fd].length >= 4096 || b.includes(10)) flush(fd);
};
const wasm = trace ? "micropython-settrace.wasm" : "micropython.wasm";
const mp = await loadMicroPython({
  heapsize, url: path.join(pkgDir, wasm), linebuffer: false, stdout: out(1), stderr: out(2),
});

const SKIP = new Set([".git", "node_modules", ".venv", "venv", "__pycache__", "build", "typings",
  ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".tox", ".nox"]);
const mkdirs = (dir) => {
  let p = "";
  for (const part of dir.split("/").filter(Boolean)) {
    p += "/" + part;
    try { mp.FS.mkdir(p); } catch { /* exists */ }
  }
};
const mirror = (dir) => {
  mkdirs(dir);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    let st;
    try { st = fs.statSync(p); } catch { continue; } // dangling symlink
    if (st.isDirectory() && !SKIP.has(e.name) && !e.isSymbolicLink()) mirror(p);
    else if (st.isFile() && st.size <= 32 << 20) mp.FS.writeFile(p, fs.readFileSync(p));
  }
};
const cwd = process.cwd();
const script = path.resolve(argv[0]);
if (!fs.statSync(script, { throwIfNoEntry: false })?.isFile()) {
  process.stderr.write(`mpwasm: can't open file '${argv[0]}'\n`);
  process.exit(2);
}
const pyPath = (process.env.MICROPYPATH || "").split(":").filter(Boolean)
  .map((d) => path.resolve(cwd, d)).filter((d) => fs.existsSync(d));
for (const d of [cwd, path.dirname(script), ...pyPath]) mirror(d);
mp.FS.chdir(cwd);

let code = 1;
let more = 0;
mp.registerJsModule("_mpwasm", { exit: (c) => { code = c; }, more: (m) => { more = m; } });
const driver = `
def _run(script, argv, paths):
    import sys, __main__, _mpwasm
    sys.argv.clear(); sys.argv.extend(argv)
    if '' in sys.path: sys.path.remove('')
    for p in reversed(paths): sys.path.insert(0, p)
    g = __main__.__dict__
    g['__file__'] = script
    code = 0
    try:
        with open(script) as f: src = f.read()
        exec(compile(src, script, 'exec'), g)
    except SystemExit as e:
        v = e.args[0] if e.args else None
        if v is None: code = 0
        elif isinstance(v, int): code = v
        else: print(v, file=sys.stderr); code = 1
    except BaseException as e:
        sys.print_exception(e, sys.stderr)
        code = 1
    _mpwasm.exit(code)

def _step():
    import sys, __main__, _mpwasm
    gen = __main__.__dict__.get('MPWASM_STEPS')
    if gen is None:
        _mpwasm.more(0)
        return
    try:
        next(gen)
        _mpwasm.more(1)
        return
    except StopIteration:
        code = 0
    except SystemExit as e:
        v = e.args[0] if e.args else None
        code = 0 if v is None else v if isinstance(v, int) else 1
        if not isinstance(v, (int, type(None))): print(v, file=sys.stderr)
    except BaseException as e:
        sys.print_exception(e, sys.stderr)
        code = 1
    _mpwasm.exit(code)
    _mpwasm.more(0)

import builtins
builtins._mpwasm_step = _step
_run(${JSON.stringify(script)}, ${JSON.stringify(argv)},
     ${JSON.stringify([path.dirname(script), ...pyPath])})
`;
try {
  mp.runPython(`exec(compile(${JSON.stringify(driver)}, '<mpwasm>', 'exec'), {'__name__': '_mpwasm'})`);
  if (code === 0) {
    do {
      mp.runPython("import gc\ngc.collect()");
      more = 0;
      mp.runPython("_mpwasm_step()");
    } while (more);
  }
} catch (e) {
  process.stderr.write(`mpwasm: ${e.message ?? e}\n`);
  code = 1;
}
flush(1); flush(2);
process.exitCode = code & 255;
