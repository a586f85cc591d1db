# On the ESP32 an app module must not share its name with a module of the firmware: an import
# of a built-in C module (esp32, machine, network, micropython...) never looks at the
# filesystem, and frozen modules (ntptime, umqtt, requests...) come from ".frozen", which is
# ahead of /lib and /firmware on sys.path. Either way our file would never load on the board,
# while every test off the board would still pass. The firmware's module list is the one the
# pinned ESP32 stubs ship (make typings/.stamp, also used by make lint).
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
STUBS = ROOT / "typings"
STUB_DIST = "micropython_esp32_stubs-"


def firmware_modules():
    """Top-level module names in the ESP32 firmware (built-in and frozen), with the u-prefixed
    aliases (ujson, uos...) also under their plain names."""
    dist = [p for p in STUBS.glob(STUB_DIST + "*.dist-info")] if STUBS.is_dir() else []
    if not dist:
        pytest.fail("ESP32 stubs missing: run `make typings/.stamp` (make test does)")
    names = set()
    for line in (dist[0] / "RECORD").read_text().splitlines():
        top = line.split(",")[0].split("/")[0]
        if top.endswith(".pyi"):
            names.add(top[:-4])
        elif "." not in top and top != "__pycache__":
            names.add(top)  # a package: umqtt, requests, mip
    names |= {n[1:] for n in names if n.startswith("u")}
    return names


def app_modules():
    """Top-level names the device imports from lib/ and firmware/ (modules and packages)."""
    names = {}
    for folder in ("lib", "firmware"):
        for entry in sorted(os.listdir(ROOT / folder)):
            path = ROOT / folder / entry
            if entry.endswith(".py"):
                names[entry[:-3]] = folder + "/" + entry
            elif (path / "__init__.py").is_file():
                names[entry] = folder + "/" + entry
    return names


def test_the_stub_list_knows_the_firmware():
    # If the stubs changed shape this would silently pass everything: check known members.
    known = firmware_modules()
    for name in ("esp32", "machine", "network", "micropython", "ntptime", "umqtt", "json"):
        assert name in known


def test_no_app_module_is_shadowed_by_the_firmware():
    clashes = sorted(
        "%s (%s)" % (path, name)
        for name, path in app_modules().items()
        if name in firmware_modules()
    )
    assert not clashes, "named like a firmware module, never imported on the ESP32: " + ", ".join(
        clashes
    )
