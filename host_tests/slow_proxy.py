"""A TCP proxy on 127.0.0.1 that delays everything a broker sends (CONNACK, PUBACK, SUBACK,
messages) by a fixed time: a slow broker made from a real one, the fault injected at the
socket. Client-to-broker bytes pass at once.

    with SlowProxy(broker_port, delay_s=1.0) as proxy:
        ... connect to 127.0.0.1:proxy.port ...
"""

import queue
import socket
import threading
import time

HOST = "127.0.0.1"
_POLL_S = 0.2  # every blocking call wakes up this often to notice stop()


class SlowProxy:
    def __init__(self, upstream_port, delay_s):
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self._stop = threading.Event()
        self._socks = []
        self._threads = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(8)
        self._listener.settimeout(_POLL_S)
        self.port = self._listener.getsockname()[1]
        self.connections = 0

    def __enter__(self):
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        self._stop.set()
        for s in [self._listener, *self._socks]:
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(2.0)

    def _spawn(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(t)
        t.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            self.connections += 1
            for s in (client, upstream):
                s.settimeout(_POLL_S)
                self._socks.append(s)
            for src, dst, delay in ((client, upstream, 0.0), (upstream, client, self.delay_s)):
                late = queue.Queue()
                self._spawn(self._receive, src, late, delay)
                self._spawn(self._send, late, dst, src)

    def _receive(self, src, late, delay):
        """Everything src sends, into late with the time it is due (b"" at the end)."""
        while not self._stop.is_set():
            try:
                data = src.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            late.put((time.monotonic() + delay, data))
            if not data:
                return

    def _send(self, late, dst, src):
        """What late holds, to dst when it is due; the end closes both sides."""
        while not self._stop.is_set():
            try:
                due, data = late.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            wait = due - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        _close(src, dst)


def _close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
