"""One helper for the tests that run ``mlpulse serve`` as a real child process on
127.0.0.1 (a random free port): start it and wait for ``/readyz``, kill -9 it, stop it.

Used by tests/ui, tests/remote, tests/server, tests/export and the CLI tests (``tests/`` is
on ``sys.path`` under pytest's default import mode, so ``from _server import ...`` works
from every test directory).

Readiness is polled every 20 ms: a refused connection answers at once, so the wait ends
within a few milliseconds of the server's start. The deadline is generous (a loaded CI
machine may take long to import), and costs nothing when the server starts on time.
"""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

#: how long a server may take to answer /readyz (imports on a loaded 2-core machine)
START_TIMEOUT = 240.0
POLL = 0.02


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(db: Path | str, port: int, *args: str) -> list[str]:
    """The ``mlpulse serve`` command line of a test server."""
    return [sys.executable, "-m", "mlpulse.cli", "serve", "--db", str(db), "--port", str(port),
            *args]  # fmt: skip


def wait_ready(url: str, proc: subprocess.Popen[Any] | None, log: Path | None,
               timeout: float = START_TIMEOUT, path: str = "/readyz") -> None:  # fmt: skip
    """Poll ``url + path`` until it answers 200; fail with the log's tail if ``proc`` exits
    or ``timeout`` seconds pass."""

    def tail() -> str:
        return log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited with status {proc.returncode}: {tail()}")
            try:
                if client.get(url + path).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start within {timeout:g} s: {tail()}")
            time.sleep(POLL)


class ServerProcess:
    """``mlpulse serve --db db`` in a child process, its output in ``db.log``.

    ``limits`` maps ``resource.RLIMIT_*`` to (soft, hard) limits set in the child only.
    """

    def __init__(
        self,
        db: Path,
        *args: str,
        port: int | None = None,
        limits: dict[int, tuple[int, int]] | None = None,
    ) -> None:
        self.db, self.args, self.limits = Path(db), args, limits or {}
        self.port = port or free_port()
        self.log = self.db.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return serve_command(self.db, self.port, *self.args)

    def start(self, timeout: float = START_TIMEOUT) -> ServerProcess:
        limits = self.limits

        def apply_limits() -> None:
            for kind, value in limits.items():
                resource.setrlimit(kind, value)

        with open(self.log, "ab") as handle:
            self.proc = subprocess.Popen(self.command(), stdout=handle, stderr=handle,
                                         preexec_fn=apply_limits if limits else None)  # fmt: skip
        try:
            wait_ready(self.url, self.proc, self.log, timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM, the graceful path (SIGKILL after 30 s); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def connect(self) -> socket.socket:
        """A raw socket to the server (5 s timeouts)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.settimeout(5)
        return sock


__all__ = ["START_TIMEOUT", "ServerProcess", "free_port", "serve_command", "wait_ready"]
