"""Server hardening (issue 8): connection limits and timeouts, a full disk and an invalidated
database, reused idempotency keys, deep JSON, 404s that list models, and the keys CLI.

Most tests drive a real ``mlpulse serve`` process on 127.0.0.1 through raw sockets or
httpx; each stays bounded in time (timeouts of about a second, a few hundred sockets).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import resource
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pytest

import mlpulse
from _server import ServerProcess, free_port
from mlpulse.cli import main
from mlpulse.server.logs import RateLimit, flood_kind

ROWS = {"rows": [{"id": "a", "prediction": 0.9, "x": 1.0}, {"id": "b", "prediction": 0.2, "x": 2.0}]}


class Server(ServerProcess):
    """``mlpulse serve`` in a child process (tests/_server.py), optionally under resource
    limits (``limits``: ``resource.RLIMIT_*`` to (soft, hard), set in the child only)."""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(*args: str, db: Path | None = None, **kw) -> Server:
        server = Server(db or tmp_path / f"s{len(started)}.duckdb", *args, **kw)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


def read_until_closed(sock: socket.socket, limit: float = 5.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    data = b""
    sock.settimeout(limit)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def json_body(response: bytes) -> dict:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


# -- connections ----------------------------------------------------------------------


LIMITS = ("--limit-concurrency", "40", "--header-timeout", "1", "--body-timeout", "1",
          "--timeout-keep-alive", "1", "--log-level", "warning")


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("limited") / "limited.duckdb", *LIMITS).start()
    yield server
    server.stop()


class TestConnectionLimits:
    """Idle, slow and surplus connections are closed, so the server keeps answering."""

    def test_idle_connections_are_closed_and_health_recovers(self, limited):
        # three times the cap: before the fix every one stayed open for ever
        socks = [limited.connect() for _ in range(120)]
        try:
            started = time.monotonic()
            answers = [read_until_closed(s, limit=6.0) for s in socks]
            assert time.monotonic() - started < 6.0
            refused = [data for data, _ in answers if data]
            # beyond the cap: a 503 at once; within it: closed silently after header_timeout
            assert len(refused) >= 120 - 40
            assert all(d.startswith(b"HTTP/1.1 503") for d in refused)
            assert json_body(refused[0])["code"] == "unavailable"
            assert max(took for _, took in answers) < 4.0
            assert httpx.get(f"{limited.url}/healthz", timeout=5).status_code == 200
        finally:
            for s in socks:
                s.close()

    def test_partial_headers_get_408(self, limited):
        with limited.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            data, took = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 408") and 0.8 < took < 4.0
        assert json_body(data)["code"] == "request_timeout"

    @pytest.mark.parametrize("path", ["/api/v1/models/m/versions/v1/predictions",
                                      "/api/v1/models"])
    def test_slow_body_gets_408(self, limited, path):
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 100\r\n\r\n")
        with limited.connect() as sock:
            sock.sendall(head.encode() + b'{"rows": [')
            data, took = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 408"), data[:200]
        assert 0.8 < took < 4.0 and b"connection: close" in data.lower()
        body = json_body(data)
        assert body["code"] == "request_timeout" and "body_timeout" in body["detail"]

    def test_idle_keep_alive_connection_is_closed(self, limited):
        with limited.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data, took = read_until_closed(sock)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"}") and 0.8 < took < 4.0

    def test_body_in_time_is_fine(self, limited):
        httpx.post(f"{limited.url}/api/v1/models",
                   json={"name": "ok", "version": "v1", "task": "binary"}).raise_for_status()
        r = httpx.post(f"{limited.url}/api/v1/models/ok/versions/v1/predictions", json=ROWS)
        assert r.status_code == 200 and r.json()["stored"] == 2

    def test_fd_exhaustion_keeps_server_up_and_log_small(self, serve):
        """The probe's attack at small scale: more idle sockets than the process may open
        files. Before the fix: no answer and megabytes of "Too many open files" a second."""
        nofile = 256
        server = serve("--header-timeout", "1",
                       limits={resource.RLIMIT_NOFILE: (nofile, nofile)})
        socks = [server.connect() for _ in range(400)]
        try:
            time.sleep(2.5)  # the idle ones are closed after header_timeout
            assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        finally:
            for s in socks:
                s.close()
        assert server.log.stat().st_size < 100_000
        log = server.log.read_text()
        assert "leaves room for" in log  # the cap was fitted to the fd limit, and said so


class TestRateLimitedLogs:
    """accept() failures are logged once per interval, with a count of the others."""

    def test_one_per_interval(self):
        now = [0.0]
        limit = RateLimit(interval=10.0, clock=lambda: now[0])
        error = OSError(24, "Too many open files")

        def record() -> logging.LogRecord:
            return logging.makeLogRecord({
                "name": "asyncio", "levelno": logging.ERROR,
                "msg": "socket.accept() out of system resource",
                "exc_info": (OSError, error, None)})

        assert flood_kind(record()) == "accept"
        assert [limit.filter(record()) for _ in range(1000)].count(True) == 1
        now[0] = 11.0
        passed = record()
        assert limit.filter(passed) and passed.suppressed == 999
        assert "999 more" in passed.getMessage()
        ordinary = logging.makeLogRecord({"msg": "GET /healthz 200"})
        assert all(limit.filter(ordinary) for _ in range(5))


# -- a full disk and an invalidated database ------------------------------------------


@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs Linux prlimit")
class TestDiskFull:
    """A write that finds no space is a 507 (not 500); freeing space is enough to go on.

    The full disk is simulated with a file-size limit on the server process (RLIMIT_FSIZE:
    writes fail with EFBIG, as they fail with ENOSPC on a full disk); DuckDB's reaction
    to the failed write is real."""

    def test_507_then_recovers(self, serve, tmp_path):
        limit = 6 * 1024 * 1024
        server = serve("--log-level", "warning",
                       limits={resource.RLIMIT_FSIZE: (limit, resource.RLIM_INFINITY)})
        api = httpx.Client(base_url=server.url, timeout=30)
        api.post("/api/v1/models", json={"name": "m", "version": "v1", "task": "binary"})
        stored, statuses, failed = 0, [], None
        for i in range(40):
            rows = [{"id": f"{i}-{j}", "prediction": (j % 100) / 100, "x": float(j),
                     "s": uuid.uuid4().hex * 4} for j in range(5000)]
            r = api.post("/api/v1/models/m/versions/v1/predictions", json={"rows": rows},
                         headers={"Idempotency-Key": f"b{i}"})
            statuses.append(r.status_code)
            if r.status_code == 200:
                stored += r.json()["stored"]
            else:
                failed = (i, rows, r)
                break
        assert failed is not None, f"the file-size limit never bit: {statuses}"
        i, rows, r = failed
        assert r.status_code == 507, r.text
        body = r.json()
        assert body["code"] == "insufficient_storage" and "not stored" in body["detail"]
        assert str(tmp_path) not in body["detail"]  # no server paths in the answer
        assert 500 not in statuses
        # the store itself is fine: it refused one transaction
        assert api.get("/healthz").status_code == 200
        # "free space": lift the limit, send the same batch again
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        r = api.post("/api/v1/models/m/versions/v1/predictions", json={"rows": rows},
                     headers={"Idempotency-Key": f"b{i}"})
        assert r.status_code == 200 and r.json()["stored"] == len(rows)
        stored += len(rows)
        counts = api.get("/api/v1/models/m/versions/v1/metrics",
                         params={"metrics": "count", "start": "-1h", "end": "+1h"}).json()
        assert counts["rows"][0]["count"] == stored


@contextmanager
def in_thread(app) -> Iterator[httpx.Client]:
    """The app served by uvicorn in a thread of this process (so the test can reach its
    store), and a client for it."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_config=None,
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the in-thread server did not start"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{config.port}", timeout=30) as api:
            yield api
    finally:
        server.should_exit = True
        thread.join(30)


class TestInvalidatedStore:
    """After a fatal write error DuckDB invalidates the database: every request would fail.
    The server answers 503 (never 500), liveness fails, and it reopens the file once it
    can, with every acknowledged batch intact.

    Simulated part: the full disk is a tiny file-size limit (RLIMIT_FSIZE) on this test
    process, and the fatal error is provoked by a CHECKPOINT run under it (the server
    would meet it at an automatic checkpoint); the invalidation, the failing queries, the
    failed and the successful reopen are DuckDB's own."""

    def test_503_liveness_and_reopen(self, tmp_path):
        from mlpulse.server import ServerConfig, create_app
        from mlpulse.service import Service

        db = tmp_path / "inv.duckdb"
        service = Service.open(str(db))
        app = create_app(ServerConfig(db=str(db)), service)
        health = app.state.health
        with in_thread(app) as api:
            api.post("/api/v1/models", json={"name": "m", "version": "v1", "task": "binary"})
            r = api.post("/api/v1/models/m/versions/v1/predictions", json=ROWS)
            assert r.status_code == 200 and r.json()["stored"] == 2

            store = app.state.service.store
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            more = {"rows": [{"id": "c", "prediction": 0.5, "x": 3.0}]}
            health.retry_interval = 3600.0  # no reopen yet: "the disk is still full"
            resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))  # "the disk is full"
            try:
                with store.lock, pytest.raises(duckdb.FatalException):
                    store._conn.execute("CHECKPOINT")
                with pytest.raises(duckdb.FatalException, match="invalidated"):
                    store.fetch_one("SELECT 1")  # really unusable
                r = api.post("/api/v1/models/m/versions/v1/predictions", json=more)
                assert r.status_code == 503, r.text
                assert r.json()["code"] == "store_invalidated" and r.headers["retry-after"]
                # liveness fails while the database cannot be reopened
                assert api.get("/healthz").status_code == 503
                assert api.get("/readyz").status_code == 503
                r = api.get("/api/v1/models")
                assert r.status_code == 503 and r.json()["code"] == "store_invalidated"
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

            health.retry_interval = 0.0  # "space was freed"
            assert api.get("/healthz").status_code == 200
            # reopened in place: the same service, a new store
            assert app.state.service is service and service.store is not store
            r = api.post("/api/v1/models/m/versions/v1/predictions", json=more)
            assert r.status_code == 200 and r.json()["stored"] == 1
            counts = api.get("/api/v1/models/m/versions/v1/metrics",
                             params={"metrics": "count", "start": "-1h", "end": "+1h"})
            assert counts.json()["rows"][0]["count"] == 3  # the acknowledged 2, and 1 more
        service.close()  # its owner closes it (the app did not open it)
        assert service.store._closed


# -- idempotency keys, deep JSON, 404s, names -----------------------------------------


@pytest.fixture(scope="module")
def keyed(tmp_path_factory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A server with an admin, an ingest and a read key (created with the CLI)."""
    db = tmp_path_factory.mktemp("keyed") / "keyed.duckdb"
    keys = {}
    for scope in ("admin", "ingest", "read"):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            assert main(["keys", "create", "--db", str(db), "--scope", scope]) == 0
        keys[scope] = out.getvalue().strip()
    server = Server(db, "--log-level", "warning").start()
    yield server, keys
    server.stop()


def client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"},
                        timeout=30)


def register(api: httpx.Client, name: str, version: str = "v1") -> None:
    r = api.post("/api/v1/models", json={"name": name, "version": version, "task": "binary"})
    assert r.status_code == 200, r.text


def count(api: httpx.Client, name: str) -> int:
    r = api.get(f"/api/v1/models/{name}/versions/*/metrics",
                params={"metrics": "count", "start": "-1h", "end": "+1h"})
    return r.json()["rows"][0]["count"]


class TestIdempotencyKey:
    """A retried batch is stored once; another batch under a used key is a 409."""

    def test_same_request_same_report_other_request_409(self, keyed):
        server, keys = keyed
        api = client(server, keys["admin"])
        name = f"idem_{uuid.uuid4().hex[:8]}"
        register(api, name)
        register(api, name, "v2")
        url = f"/api/v1/models/{name}/versions/v1/predictions"
        headers = {"Idempotency-Key": "batch-1", "Content-Type": "application/json"}
        raw = json.dumps(ROWS).encode()
        first = api.post(url, content=raw, headers=headers)
        assert first.status_code == 200 and first.json()["stored"] == 2
        # a retry: the same request (also when compressed) answers the same, stores nothing
        for body, extra in ((raw, {}), (gzip.compress(raw, mtime=1), {"Content-Encoding": "gzip"})):
            again = api.post(url, content=body, headers=headers | extra)
            assert again.status_code == 200 and again.json() == first.json()
        other = {"rows": [{"id": "z", "prediction": 0.1, "x": 9.0}]}
        cases = {
            "another body": (url, other),
            "another version": (f"/api/v1/models/{name}/versions/v2/predictions", ROWS),
            "another kind": (f"/api/v1/models/{name}/feedback",
                             {"rows": [{"id": "a", "label": 1}]}),
        }
        for what, (path, body) in cases.items():
            r = api.post(path, content=json.dumps(body).encode(), headers=headers)
            assert r.status_code == 409, (what, r.text)
            assert r.json()["code"] == "idempotency_conflict" and "batch-1" in r.json()["detail"]
        assert count(api, name) == 2  # nothing of the refused batches was stored
        r = api.post(url, json=other, headers={"Idempotency-Key": "batch-2"})
        assert r.status_code == 200 and count(api, name) == 3


class TestRequestShape:
    """Malformed bodies are 4xx, never 500."""

    @pytest.mark.parametrize("depth", [100_000, 600])
    def test_deeply_nested_json(self, keyed, depth):
        server, keys = keyed
        api = client(server, keys["admin"])
        name = f"deep_{uuid.uuid4().hex[:8]}"
        register(api, name)
        nested = "[" * depth + "]" * depth
        row = '{"id": "a", "prediction": 0.5, "x": ' + nested + "}"
        url = f"/api/v1/models/{name}/versions/v1/predictions"
        bodies = [
            ("/api/v1/models", "application/json", '{"name": ' + nested + "}"),
            (url, "application/json", '{"rows": ' + nested + "}"),
            (url, "application/json", '{"rows": [' + row + "]}"),
            (url, "application/x-ndjson", row + "\n"),
        ]
        for path, kind, body in bodies:
            r = api.post(path, content=body.encode(), headers={"Content-Type": kind})
            assert r.status_code in (400, 422), (path, r.status_code, r.text[:300])
            assert r.json()["code"] != "internal_error"


class TestNotFoundDoesNotList:
    """A key without read scope learns nothing about other models from a 404."""

    def test_ingest_key(self, keyed):
        server, keys = keyed
        admin, ingest = client(server, keys["admin"]), client(server, keys["ingest"])
        secret = f"secret_{uuid.uuid4().hex[:8]}"
        register(admin, secret, "hidden_version")
        for path in ("/api/v1/models/nope/versions/v1/predictions",
                     "/api/v1/models/nope/feedback",
                     f"/api/v1/models/{secret}/versions/v9/predictions"):
            r = ingest.post(path, json=ROWS)
            assert r.status_code == 404, r.text
            detail = r.json()["detail"]
            assert secret not in detail.replace(f"model {secret!r} has", "")
            assert "hidden_version" not in detail
        assert "nope" in ingest.post("/api/v1/models/nope/feedback", json=ROWS).json()["detail"]
        # a key that may read still gets the helpful list
        reader = client(server, keys["read"])
        assert secret in reader.get("/api/v1/models/nope").json()["detail"]


class TestNamesInPaths:
    """Names with URL-special characters reach the right model; encoded slashes and dot
    segments never reach a handler as a name (404 JSON, not 500)."""

    def test_special_names_round_trip(self, keyed, tmp_path):
        server, keys = keyed
        name = f"a b?c#d%e&f=g'h\"<i>é_{uuid.uuid4().hex[:6]}"
        pulse = mlpulse.connect(server.url, api_key=keys["admin"], spool_dir=tmp_path / "sp")
        try:
            model = pulse.model(name, version="v 1?#", task="binary")
            report = model.log_batch(pd.DataFrame({"id": ["a"], "prediction": [0.9], "x": [1.0]}))
            assert report.stored == 1
            frame = model.metrics(["count"], start="-1h", end="+1h")
            assert frame["count"].iloc[0] == 1
        finally:
            pulse.close()
        api = client(server, keys["admin"])
        for path in ("/api/v1/models/a%2Fb", "/api/v1/models/a%2Fb/versions/v1/metrics",
                     "/api/v1/models/%2E%2E", "/api/v1/models/%2e%2e/feedback"):
            r = api.get(path)
            assert r.status_code in (404, 405), (path, r.status_code)
            assert r.headers["content-type"].startswith("application/json")


# -- the keys CLI ---------------------------------------------------------------------


class TestKeysCli:
    """A mistyped --db is an error for list and revoke, and never silent for create."""

    def test_missing_database(self, tmp_path, capsys):
        typo = tmp_path / "pluse.duckdb"
        assert main(["keys", "list", "--db", str(typo)]) == 2
        assert "no database file" in capsys.readouterr().err
        assert main(["keys", "revoke", "--db", str(typo), "1a2b3c4d"]) == 2
        assert not typo.exists()
        assert main(["keys", "list", "--db", ":memory:"]) == 2
        assert main(["keys", "create", "--db", str(typo), "--scope", "admin"]) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith("mlp_") and "created a new database" in captured.err
        assert main(["keys", "list", "--db", str(typo)]) == 0
        assert "admin" in capsys.readouterr().out
        os.remove(typo)
