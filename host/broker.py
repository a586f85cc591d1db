# An embedded MQTT broker (amqtt) on 127.0.0.1, run on its own asyncio loop in a daemon thread:
# what `make demo` uses when no MQTT_HOST is given, so a new user needs no broker of their own.

import asyncio
import socket
import threading


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    def __init__(self, port=None):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._loop = None
        self._broker = None
        self._thread = None

    def start(self, timeout_s=10):
        from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": "%s:%d" % (self.host, self.port)}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def boot():
            self._broker = Broker(config, loop=self._loop)
            await self._broker.start()

        asyncio.run_coroutine_threadsafe(boot(), self._loop).result(timeout_s)
        return self

    def stop(self, timeout_s=5):
        if self._loop is None:
            return
        try:
            if self._broker is not None:
                fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
                fut.result(timeout_s)
        except Exception:
            pass  # shutting down anyway
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
        self._loop = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
