"""Real server processes on 127.0.0.1 (random free ports) and a fixture that runs one test
against both transports: the embedded store and a remote client of a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import mlpulse


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``mlpulse serve`` in a child process; kill -9, terminate and restart it."""

    def __init__(self, db: Path, port: int | None = None, *args: str) -> None:
        self.db = db
        self.port = port or free_port()
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        command = [sys.executable, "-m", "mlpulse.cli", "serve", "--db", str(self.db),
                   "--port", str(self.port), *self.args]
        handle = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(command, stdout=handle, stderr=handle)
        handle.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM: the graceful path; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start dedicated servers (each with its own database unless ``db`` is given)."""
    started: list[ServerProcess] = []

    def make(
        *args: str, db: Path | None = None, port: int | None = None, start: bool = True
    ) -> ServerProcess:
        server = ServerProcess(db or tmp_path / f"s{len(started)}.duckdb", port, *args)
        started.append(server)
        return server.start() if start else server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the session (tests use their own model names)."""
    db = tmp_path_factory.mktemp("server") / "shared.duckdb"
    proc = ServerProcess(db).start()
    yield proc
    proc.stop()


@pytest.fixture
def model_name() -> str:
    return f"m_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture(params=["embedded", "remote"])
def transport(request: pytest.FixtureRequest, server: ServerProcess, spool_dir: Path):
    """The same test against ``mlpulse.connect(":memory:")`` and a real server."""
    if request.param == "embedded":
        pulse = mlpulse.connect(":memory:")
    else:
        pulse = mlpulse.connect(server.url, spool_dir=spool_dir, interval=0.05)
    try:
        yield pulse
    finally:
        pulse.close()


os.environ.setdefault("MLPULSE_SPOOL_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "mlpulse-test-spool"))
