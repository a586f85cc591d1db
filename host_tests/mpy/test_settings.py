# firmware/settings.py under real MicroPython 1.29: the validated config is cached on flash and
# used while config.json and the validator are unchanged, so a boot or a battery wake does not
# load the validator (the largest module) at all.

import json
import os
import sys

import settings
from mptest import assert_raises, run

DIR = "/tmp/settings_test"
PATH = DIR + "/config.json"
CACHE = DIR + "/config.cache"
RAW = {"wifi": {"ssid": "home", "password": "pw"}, "mqtt": {"host": "broker.lan"},
       "sensors": {"heat_energy": {}, "volume": {}},
       "custom": [{"name": "E8", "command": "0x0061"}]}  # fmt: skip


def _fresh(raw=RAW):
    try:
        os.mkdir("/tmp")
    except OSError:
        pass
    try:
        os.mkdir(DIR)
    except OSError:
        pass
    for p in (CACHE, CACHE + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass
    with open(PATH, "w") as f:
        json.dump(raw, f)
    sys.modules.pop("config", None)


def test_first_load_validates_and_caches_then_the_cache_is_used():
    _fresh()
    cfg = settings.load(PATH, CACHE, "esp32")
    assert "config" in sys.modules  # validated
    assert cfg["registers"] == [("heat_energy", 0x3C, "Heat Energy"), ("volume", 0x44, "Heat Volume"),
                                ("e8", 0x61, "E8")]  # fmt: skip
    sys.modules.pop("config", None)
    again = settings.load(PATH, CACHE, "esp32")
    assert "config" not in sys.modules  # from the cache: the validator was not loaded
    assert again == cfg and isinstance(again["registers"][0], tuple)


def test_an_edited_config_is_validated_again():
    _fresh()
    settings.load(PATH, CACHE, "esp32")
    raw = json.loads(json.dumps(RAW))
    raw["update_interval"] = "15min"
    with open(PATH, "w") as f:
        json.dump(raw, f)
    sys.modules.pop("config", None)
    cfg = settings.load(PATH, CACHE, "esp32")
    assert cfg["update_interval"] == 900 and "config" in sys.modules


def test_another_target_or_validator_makes_another_key():
    _fresh()
    assert settings.cache_key(PATH, "esp32") != settings.cache_key(PATH, "host")
    key = settings.cache_key(PATH, "esp32")
    files = settings.validator_files()
    assert None not in files and files[0].endswith(("config.py", "config.mpy")), files
    real = settings.validator_files
    other = DIR + "/other_registers.py"
    with open(other, "w") as f:
        f.write("# a new firmware's register table\n")
    settings.validator_files = lambda: files[:2] + [other]
    try:
        assert settings.cache_key(PATH, "esp32") != key
    finally:
        settings.validator_files = real


def test_a_damaged_cache_is_replaced():
    _fresh()
    with open(CACHE, "w") as f:
        f.write('{"key": "x", "conf')
    cfg = settings.load(PATH, CACHE, "esp32")
    with open(CACHE) as f:
        assert json.load(f)["config"]["mqtt"]["host"] == cfg["mqtt"]["host"] == "broker.lan"


def test_a_bad_config_raises_and_is_not_cached():
    _fresh({"mqtt": {"host": ""}})
    e = assert_raises(Exception, settings.load, PATH, CACHE, "esp32")
    assert type(e).__name__ == "ConfigError" and "mqtt.host" in str(e)
    assert_raises(OSError, open, CACHE)


def test_a_missing_config_names_the_file():
    _fresh()
    os.remove(PATH)
    e = assert_raises(Exception, settings.load, PATH, CACHE, "esp32")
    assert type(e).__name__ == "ConfigError" and PATH in str(e)


run(globals(), "settings")
