# The board gets lib/ and firmware/ without the Makefile's HOST_ONLY modules (tools, simulator
# and tests use them). Nothing the board runs may import one: that import would fail only on
# the board.
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def host_only():
    m = re.search(r"^HOST_ONLY := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert m, "HOST_ONLY missing from the Makefile"
    return m.group(1).split()


def module_name(path):
    rel = pathlib.PurePosixPath(path).relative_to(path.split("/")[0])  # lib/ or firmware/
    return str(rel.with_suffix("")).replace("/", ".").removesuffix(".__init__")


def imported(path):
    names = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(node.module + "." + a.name for a in node.names)  # submodules
    return names


def board_files():
    skip = set(host_only())
    files = [
        str(p.relative_to(ROOT)) for d in ("lib", "firmware") for p in (ROOT / d).rglob("*.py")
    ]
    files = [f for f in files if f not in skip]
    return files + ["main.py", "boot.py", "tools/probe.py", "tools/device_clean.py"]


def test_host_only_modules_exist_and_are_portable_code():
    for path in host_only():
        assert path.startswith("lib/") and (ROOT / path).is_file(), path


def test_nothing_the_board_runs_imports_a_host_only_module():
    banned = {module_name(p) for p in host_only()}
    assert banned == {"kmp.strict", "kmp.logger", "kmp.messages"}
    found = sorted(
        "%s imports %s" % (f, name) for f in board_files() for name in imported(f) & banned
    )
    assert not found, found


def test_the_check_sees_such_imports_in_either_form():
    # the host tool imports them (`from kmp import messages, ...`): the scan must see that
    banned = {module_name(p) for p in host_only()}
    assert banned <= imported("tools/kmptool.py")
    assert "kmp.meters" in imported("firmware/announce.py")  # what the board uses instead
