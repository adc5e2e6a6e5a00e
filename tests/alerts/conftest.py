"""Fixtures of the alerting tests: notification records and real local receivers."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from receivers import (  # noqa: E402
    ALERTMANAGER,
    Alertmanager,
    HttpReceiver,
    make_record,
    self_signed,
)


@pytest.fixture
def record() -> Callable[..., dict[str, Any]]:
    return make_record


@pytest.fixture
def receiver() -> Iterator[Callable[..., HttpReceiver]]:
    """Start HTTP receivers (``receiver(script=[500, 200], hang=0)``); all closed after."""
    started: list[HttpReceiver] = []

    def start(script: list[int] | None = None, **options: Any) -> HttpReceiver:
        r = HttpReceiver(script, **options).__enter__()
        started.append(r)
        return r

    yield start
    for r in started:
        r.__exit__(None, None, None)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set environment variables for one test."""

    def put(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)

    return put


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for 127.0.0.1."""
    made = self_signed(tmp_path_factory.mktemp("tls"))
    if made is None:
        pytest.skip("no TLS certificate: neither the cryptography package nor openssl is here")
    return made


@pytest.fixture(scope="session")
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


@pytest.fixture(scope="module")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Alertmanager, HttpReceiver]]:
    """A real Alertmanager routing every alert to a local webhook receiver."""
    if not os.path.exists(ALERTMANAGER):
        pytest.skip(
            "prometheus-alertmanager not installed (apt-get install prometheus-alertmanager)"
        )
    with HttpReceiver() as hook:
        am = Alertmanager(tmp_path_factory.mktemp("alertmanager"), f"{hook.url}/am")
        try:
            yield am, hook
        finally:
            am.stop()
