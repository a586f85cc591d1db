# `make demo` as a new user runs it: a local broker that honours topic filters (mosquitto when
# installed, else the fixed amqtt), or the user's own through MQTT_HOST ("host" or "host:port"),
# one clear line when that broker is not there, nothing left behind in the temp folder.

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import demo
from broker_fixtures import Subscriber, mosquitto_broker  # noqa: F401
from host.broker import free_port

ROOT = Path(__file__).resolve().parent.parent


def run_demo(tmp_path, readings=2, deadline=60, **env):
    environ = dict(os.environ, MQTT_HOST="", MQTT_PORT="", TMPDIR=str(tmp_path))
    environ.update(env)
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "demo.py"), "--interval", "5",
         "--readings", str(readings), "--deadline", str(deadline)],
        capture_output=True, text=True, timeout=deadline + 60, env=environ,
    )  # fmt: skip


def test_demo_shows_readings_and_leaves_nothing_behind(tmp_path):
    r = run_demo(tmp_path, readings=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Heat energy" in r.stdout and "GJ" in r.stdout and "L/h" in r.stdout
    assert "readings: 2" in r.stdout
    # every redraw keeps the broker in view, and says which reading its diag is from
    name = "mosquitto" if demo_uses_mosquitto() else "amqtt"
    assert r.stdout.count("broker: %s on 127.0.0.1:" % name) == 3  # start line + 2 tables
    assert "diag after reading 1" in r.stdout
    assert "last cycle - ms" in r.stdout  # the first diag: no cycle has ended yet
    assert "Traceback" not in r.stderr
    assert not list(tmp_path.glob("kmp2mqtt-*")), list(tmp_path.iterdir())


def demo_uses_mosquitto():
    from host.broker import MosquittoBroker

    return MosquittoBroker.available()


def test_demo_on_the_users_broker_as_host_port(mosquitto_broker, tmp_path):
    # A stranger on the same broker, subscribed to other topics, sees none of the demo's.
    with Subscriber(mosquitto_broker, ["nothing/here", "other/#"]) as stranger:
        r = run_demo(tmp_path, readings=2, MQTT_HOST="127.0.0.1:%d" % mosquitto_broker.port)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("broker: 127.0.0.1:%d (MQTT_HOST)" % mosquitto_broker.port) == 3
        assert stranger.messages == []
    # ... and a viewer that comes later, subscribed to everything, gets what is retained
    with Subscriber(mosquitto_broker, ["kmp2mqtt/demo/state"]) as later:
        assert later.wait_for("kmp2mqtt/demo/state").retain


def test_demo_without_the_users_broker_says_so_in_one_line(tmp_path):
    port = free_port()  # nothing listens there
    r = run_demo(tmp_path, MQTT_HOST="127.0.0.1", MQTT_PORT=str(port))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "demo: no MQTT broker at 127.0.0.1:%d: Connection refused (unset MQTT_HOST for a local "
        "one)" % port
    ]
    assert not list(tmp_path.glob("kmp2mqtt-*"))


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        ({"MQTT_HOST": ""}, None),
        ({"MQTT_HOST": "broker.lan"}, ("broker.lan", 1883)),
        ({"MQTT_HOST": "broker.lan", "MQTT_PORT": "1884"}, ("broker.lan", 1884)),
        ({"MQTT_HOST": "127.0.0.1:1885"}, ("127.0.0.1", 1885)),
        ({"MQTT_HOST": "[::1]:1886"}, ("::1", 1886)),
        ({"MQTT_HOST": "[::1]"}, ("::1", 1883)),
        ({"MQTT_HOST": "fe80::1"}, ("fe80::1", 1883)),
    ],
)
def test_broker_address_forms(env, expected):
    assert demo.broker_address(env) == expected


@pytest.mark.parametrize("env", [{"MQTT_HOST": "h:x"}, {"MQTT_HOST": "h:0"},
                                 {"MQTT_HOST": "h", "MQTT_PORT": "70000"}, {"MQTT_HOST": "[::1"}])  # fmt: skip
def test_broker_address_refuses_a_bad_port(env):
    with pytest.raises(ValueError, match="MQTT"):
        demo.broker_address(env)


def test_a_host_that_does_not_accept_is_named_with_the_reason():
    with socket.socket() as s:  # bound, not listening: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert demo.check_reachable("127.0.0.1", port) == "Connection refused"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        assert demo.check_reachable("127.0.0.1", s.getsockname()[1]) is None


def test_the_table_says_where_its_diag_is_from():
    board = demo.Board("broker: x")
    assert render_lines(board) == ["waiting for the first reading..."]
    board.state = ('{"heat_energy":1234.567}', {"heat_energy": 1234.567, "time": "t"})
    board.states = 1
    lines = render_lines(board)
    assert lines[1] == "broker: x" and lines[-1] == "diag: none yet"
    assert any(line.split()[-1:] == ["1234.567"] for line in lines)
    board.diag = {"cycles": 1, "cycle_ms": None, "link": {"requests": 3}}
    board.diag_at = 1
    lines = render_lines(board)
    assert lines[-3].startswith("diag after reading 1 ")
    assert "3 request(s)" in lines[-2] and "last cycle - ms" in lines[-1]


def render_lines(board):
    return demo.render(board, tty=False).splitlines()


def test_the_viewer_subscribes_to_the_demo_node_only():
    topics = demo.viewer_topics()
    assert topics[0] == "kmp2mqtt/demo/#" and len(topics) == 1 + 8 + 7
    assert all(t.startswith("homeassistant/") and t.endswith("/config") and "#" not in t
               for t in topics[1:])  # fmt: skip
