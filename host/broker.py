# A local MQTT broker on 127.0.0.1 for `make demo` (a new user needs no broker of their own)
# and the tests: mosquitto as a subprocess when it is installed, else amqtt embedded on its own
# asyncio loop in a daemon thread (pure Python, always installed with the dev requirements).

import asyncio
import gc
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0


def _ephemeral_low():
    """Lowest port the kernel hands out to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A free port below the ephemeral range: a client retrying a stopped broker's port can
    then never be given that same port as its own (a TCP self-connect that would hold it)."""
    import random

    low = _ephemeral_low()
    for _ in range(50):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a crowded range: let the kernel choose
        s.bind((HOST, 0))
        return s.getsockname()[1]


def stop_process(proc, timeout_s=5.0):
    """Terminate a subprocess (a broker), killed if it does not end within timeout_s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


def wait_listening(port, deadline, alive=lambda: True):
    """True once something accepts connections on HOST:port, before the monotonic deadline."""
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def _filtering_broker_class():
    """amqtt 0.12.1's Broker, with retained messages sent only for the connecting client's own
    subscriptions. Its client_connected() replays the retained messages matching *every*
    client's filters to each client that connects (`mosquitto_sub -t nothing/here` received the
    node's retained topics, once per filter); MQTT 3.1.1 section 3.3.1.3 sends them only to a
    matching subscription of that client."""
    from amqtt.broker import Broker

    class FilteringBroker(Broker):
        async def _publish_retained_messages_for_subscription(self, subscription, session):
            topic_filter = subscription[0]
            for holder, qos in self._subscriptions.get(topic_filter, ()):
                if holder.client_id == session.client_id:
                    await super()._publish_retained_messages_for_subscription(
                        (topic_filter, qos), session
                    )
                    return

    return FilteringBroker


class AmqttBroker:
    """amqtt's Broker (with retained messages filtered per client) on a private event loop in
    a daemon thread."""

    name = "amqtt"

    def __init__(self, port=None):
        self.host = HOST
        self.fixed_port = port  # restart on the same port (outage tests)
        self.port = None
        self._loop = None
        self._thread = None
        self._broker = None

    def start(self):
        broker_class = _filtering_broker_class()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="amqtt-broker"
        )
        self._thread.start()
        last = None
        # free_port() can race with another process: try a fresh port. A fixed port (a restart
        # in an outage test) may still be held for a moment by the stopped broker's listener:
        # wait for it, up to 10 s.
        tries = 3 if self.fixed_port is None else 50
        for attempt in range(tries):
            if attempt and self.fixed_port is not None:
                gc.collect()  # a listener socket the old loop left behind closes when collected
                time.sleep(0.2)
            self.port = self.fixed_port or free_port()
            config = {
                "listeners": {"default": {"type": "tcp", "bind": "%s:%d" % (HOST, self.port)}},
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }

            async def boot(cfg=config):
                self._broker = broker_class(cfg, loop=self._loop)
                await self._broker.start()

            try:
                asyncio.run_coroutine_threadsafe(boot(), self._loop).result(START_TIMEOUT_S)
            except Exception as e:  # port taken, most likely
                last = e
                self._broker = None
                continue
            if wait_listening(self.port, time.monotonic() + START_TIMEOUT_S):
                return self
        self.stop()
        raise RuntimeError("amqtt did not start: %r" % (last,))

    def stop(self, timeout_s=5.0):
        if self._loop is None:
            return
        if self._broker is not None:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                fut.result(timeout_s)
            except Exception:  # shutting down anyway
                pass
        # amqtt leaves its per-client handler tasks running: cancel them so their
        # connections close before the loop does.
        fut = asyncio.run_coroutine_threadsafe(_cancel_other_tasks(), self._loop)
        try:
            fut.result(timeout_s)
        except Exception:  # shutting down anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self._loop.close()
        self._loop = self._thread = self._broker = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


async def _cancel_other_tasks():
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.05)  # closing transports finish on the next loop iterations


class MosquittoBroker:
    """`mosquitto -c <conf>` as a subprocess, listening on 127.0.0.1 only, anonymous, without
    persistence; its config and log live in a private folder removed by stop()."""

    name = "mosquitto"

    def __init__(self, port=None, exe=None):
        self.host = HOST
        self.fixed_port = port
        self.port = None
        self.exe = exe or shutil.which("mosquitto")
        self.log_path = None
        self._dir = None
        self._proc = None

    @staticmethod
    def available():
        return shutil.which("mosquitto") is not None

    def start(self):
        if self.exe is None:
            raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
        self._dir = tempfile.mkdtemp(prefix="kmp2mqtt-mosquitto-")
        self.log_path = os.path.join(self._dir, "mosquitto.log")
        conf = os.path.join(self._dir, "mosquitto.conf")
        for _ in range(3):  # free_port() can race with another process: try a fresh port
            self.port = self.fixed_port or free_port()
            # mosquitto 2.x listens only where a listener says, and refuses anonymous clients
            # unless allowed.
            with open(conf, "w") as f:
                f.write("listener %d %s\nallow_anonymous true\npersistence false\n"
                        "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
                        % (self.port, HOST))  # fmt: skip
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen([self.exe, "-c", conf], stdout=log,
                                              stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL)  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT_S
            if wait_listening(self.port, deadline, lambda: self._proc.poll() is None):
                return self
            self._terminate()
        log = self.log()
        self.stop()
        raise RuntimeError("mosquitto did not start: %s" % (log.strip() or "no output"))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def _terminate(self):
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)

    def stop(self):
        self._terminate()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def local_broker():
    """The broker `make demo` starts: mosquitto when installed (what most users run), else
    the embedded amqtt. Not started yet."""
    return MosquittoBroker() if MosquittoBroker.available() else AmqttBroker()
