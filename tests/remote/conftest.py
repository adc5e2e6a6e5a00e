"""Real server processes on 127.0.0.1 (random free ports) and a fixture that runs one test
against both transports: the embedded store and a remote client of a real server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mlpulse
from _server import ServerProcess, free_port

__all__ = ["ServerProcess", "free_port"]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start dedicated servers (each with its own database unless ``db`` is given)."""
    started: list[ServerProcess] = []

    def make(
        *args: str, db: Path | None = None, port: int | None = None, start: bool = True
    ) -> ServerProcess:
        server = ServerProcess(db or tmp_path / f"s{len(started)}.duckdb", *args, port=port)
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
