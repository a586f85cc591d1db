"""The node as a user runs it (`main.py --config FILE`), as a subprocess with its log in a file,
for the end-to-end tests."""

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class NodeProcess:
    def __init__(self, config_path, tmp_path):
        self.log_path = tmp_path / "node.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "--config", str(config_path)],
            stdout=self.log, stderr=self.log, cwd=str(tmp_path),
        )  # fmt: skip

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def text(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()
