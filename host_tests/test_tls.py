# MQTT over TLS with a user and password, end to end on 127.0.0.1: a throwaway CA and server
# certificate (openssl CLI), mosquitto with a TLS listener that refuses anonymous clients, the node
# as a user runs it (`main.py --config FILE`) against the virtual meter. The password must never
# show up: not in the node's log, not in anything published, not in a config error.

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from broker_fixtures import Subscriber, mosquitto_tls
from kmpsim import Simulator
from node_process import NodeProcess

ROOT = Path(__file__).resolve().parent.parent
USER = "node"
PASSWORD = "pw-" + uuid.uuid4().hex  # unique: any occurrence anywhere is a leak
WRONG = "wrong-" + uuid.uuid4().hex
WATCHER = "watcher"
WATCHER_PASSWORD = "watch-" + uuid.uuid4().hex
SECRETS = (PASSWORD, WRONG)

pytestmark = [
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto not installed"),
    pytest.mark.skipif(
        shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd not installed"
    ),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed"),
]


def _run(args, cwd):
    subprocess.run(args, cwd=str(cwd), check=True, capture_output=True, timeout=30)


def _make_certs(d):
    """A CA and a server certificate for 127.0.0.1 / localhost, signed by it (EC: fast)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
          "-subj", "/CN=kmp2mqtt test CA"], d)  # fmt: skip
    _run(["openssl", "req", "-x509", *ec, "-keyout", "other.key", "-out", "other_ca.crt",
          "-days", "2", "-subj", "/CN=some other CA"], d)  # fmt: skip
    _run(["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
          "-subj", "/CN=localhost"], d)  # fmt: skip
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
          "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf"], d)  # fmt: skip


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    _make_certs(d)
    _run(["mosquitto_passwd", "-b", "-c", "passwd", USER, PASSWORD], d)
    _run(["mosquitto_passwd", "-b", "passwd", WATCHER, WATCHER_PASSWORD], d)
    extra = "allow_anonymous false\npassword_file %s\nlog_type all" % (d / "passwd")
    with mosquitto_tls(d, extra) as info:
        yield info, d / "ca.crt"


@pytest.fixture(scope="module")
def meter():
    with Simulator(time_scale=0, pace=False) as s:
        yield s


def _config(tmp_path, brk, device, node_id, password, ca_file):
    mqtt = {"host": brk.host, "port": brk.port, "tls": True, "user": USER, "password": password}
    if ca_file is not None:
        mqtt["ca_file"] = str(ca_file)
    cfg = {"node_id": node_id, "mqtt": mqtt, "meter": {"port": device}, "update_interval": 5}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def _watch(brk, ca):
    return Subscriber(brk, ["#"], user=WATCHER, password=WATCHER_PASSWORD, ca_file=ca)


def _assert_no_secret(text, what):
    for secret in SECRETS:
        assert secret not in text, "password leaked in %s" % what


def _assert_nothing_leaked(node, sub):
    _assert_no_secret(node.log_path.read_text(), "the node's log")
    for m in sub.messages:
        _assert_no_secret(m.topic + m.payload.decode("utf-8", "replace"), "message " + m.topic)


@pytest.mark.parametrize("verify", [True, False], ids=["ca_file", "no_ca_file"])
def test_tls_with_password_publishes_state(tls_broker, meter, tmp_path, verify):
    brk, ca = tls_broker
    node_id = "tls_ca" if verify else "tls_noca"
    cfg = _config(tmp_path, brk, meter.device, node_id, PASSWORD, ca if verify else None)
    with _watch(brk, ca) as sub:
        node = NodeProcess(cfg, tmp_path)
        try:
            sub.wait_for("kmp2mqtt/%s/status" % node_id, timeout=15, payload=b"online")
            state = sub.wait_for("kmp2mqtt/%s/state" % node_id, timeout=15)
            sub.wait_for("kmp2mqtt/%s/diag" % node_id, timeout=5)
        except AssertionError:
            print(node.text())
            raise
        finally:
            rc = node.stop()
        assert rc == 0, node.log_path.read_text()
        assert json.loads(state.payload)["heat_energy"] is not None
        sub.wait_for("kmp2mqtt/%s/status" % node_id, timeout=5, payload=b"offline")
        _assert_nothing_leaked(node, sub)


def _refused(node):
    """Wait for the node to log its first MQTT failure; it must keep running."""
    deadline = time.monotonic() + 15
    while ": mqtt: " not in node.text() and time.monotonic() < deadline:
        assert node.proc.poll() is None, node.text()
        time.sleep(0.1)
    text = node.text()
    assert ": mqtt: " in text, text  # the refusal, logged
    assert node.proc.poll() is None, text  # and the node keeps running
    return text


@pytest.mark.parametrize("case", ["wrong_password", "wrong_ca"])
def test_refused_node_keeps_running_and_never_shows_the_password(tls_broker, meter, tmp_path, case):
    brk, ca = tls_broker
    if case == "wrong_password":
        cfg = _config(tmp_path, brk, meter.device, "tls_wrong", WRONG, ca)
    else:  # the broker's certificate does not verify against this CA: no password is sent
        cfg = _config(
            tmp_path, brk, meter.device, "tls_wrong", PASSWORD, ca.parent / "other_ca.crt"
        )
    with _watch(brk, ca) as sub:
        node = NodeProcess(cfg, tmp_path)
        try:
            text = _refused(node)
            assert ("certificate verify failed" in text) == (case == "wrong_ca"), text
            if case == "wrong_password":  # in words, not "MQTTException: 5"
                assert (
                    "refused (CONNACK 5): not authorised: check mqtt.user and mqtt.password" in text
                ), text
        finally:
            rc = node.stop()
        assert rc == 0, node.log_path.read_text()
        assert not [m for m in sub.messages if m.topic.startswith("kmp2mqtt/tls_wrong/")]
        _assert_nothing_leaked(node, sub)


def test_config_error_never_shows_the_password(tmp_path):
    path = tmp_path / "config.json"
    bad = {"host": "127.0.0.1", "user": "", "password": PASSWORD, "ca_file": "ca.crt"}
    path.write_text(json.dumps({"mqtt": bad, "meter": {"port": "/dev/null"}}))
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(path)],
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert "set mqtt.tls to true to use ca_file" in r.stderr
    assert "mqtt.password: set mqtt.user too" in r.stderr
    _assert_no_secret(r.stdout + r.stderr, "a config error")
