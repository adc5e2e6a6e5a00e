"""The remote client's side of issue 8: a spool folder shared with user files, planted
spool files, poison batches, API keys from secret files, and a full disk under the spool."""

from __future__ import annotations

import errno
import functools
import gzip
import json
import logging
import os
import stat
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

import mlpulse
from _server import free_port
from mlpulse.cli import main
from mlpulse.client import remote
from mlpulse.client.http import HttpSession
from mlpulse.client.spool import MARKER, REJECTED, DiskSpool, Envelope, server_id
from mlpulse.errors import ConfigError

BASE = 1767571200.0  # 2026-01-05T00:00:00Z


def snapshot(root: Path, skip: Path | None = None) -> dict[str, object]:
    """Every path under ``root`` (links not followed) with its content or link target."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if skip is not None and (path == skip or skip in path.parents):
                continue
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = path.read_bytes()
    return out


def mock_server(monkeypatch: pytest.MonkeyPatch, handler) -> None:
    """Every HttpSession the client builds talks to ``handler`` (an httpx.MockTransport)."""
    monkeypatch.setattr(
        remote, "HttpSession", functools.partial(HttpSession, transport=httpx.MockTransport(handler))
    )


def ids_of(request: httpx.Request) -> list[str]:
    body = request.content
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    table = pa.ipc.open_stream(body).read_all()
    column = "__log_id" if "__log_id" in table.column_names else "id"
    return [str(v) for v in table.column(column).to_pylist()]


def registered(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(200, json={"name": body["name"], "version": body.get("version", "v1")})


def report(n: int) -> dict[str, int]:
    return {"received": n, "stored": n, "quarantined": 0}


def plant(folder: Path, header: dict[str, object], body: bytes = b"", *, url: str | None = None,
          seq: int = 1) -> Path:
    """A spool folder of a dead process holding one hand-made file; marked for ``url``
    (as the client marks its own) or, without ``url``, laid out as before the fix."""
    folder.mkdir(parents=True)
    (folder / "lock").write_text("")
    if url is not None:
        (folder / MARKER).write_text(json.dumps({"format": 2, "server": server_id(url)}))
    head = json.dumps(header).encode()
    path = folder / f"{seq:020d}.mlpb"
    path.write_bytes(len(head).to_bytes(4, "big") + head + body)
    return path


def valid_header(**changes: object) -> dict[str, object]:
    return {"format": 2, "kind": "prediction", "model": "m", "version": "v1",
            "params": {"id": "id"}, "content_type": "application/vnd.apache.arrow.stream",
            "rows": 1, "key": "k" * 32, "encoding": None} | changes


def arrow_body(ids: list[str]) -> bytes:
    sink = pa.BufferOutputStream()
    table = pa.table({"id": ids, "prediction": [0.5] * len(ids)})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.fixture
def down_url() -> str:
    """A URL where nothing listens (the server is down)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def keyed_server(server_factory, tmp_path, capsys):
    """A server with an admin key and a read key (created with the CLI before it starts)."""
    db = tmp_path / "keyed.duckdb"
    keys = {}
    for scope in ("admin", "read"):
        assert main(["keys", "create", "--db", str(db), "--scope", scope]) == 0
        keys[scope] = capsys.readouterr().out.strip()
    return server_factory("--log-level", "warning", db=db), keys


class TestSpoolFolderIsShared:
    """The client keeps to its own marked folders: user files next to the spool, a link out
    of it and unmarked folders are never read, moved or deleted."""

    def test_user_files_survive_spool_and_adoption(self, server_factory, tmp_path, monkeypatch):
        work, outside = tmp_path / "work", tmp_path / "outside"
        (work / "data").mkdir(parents=True)
        (work / "data" / "train.csv").write_text("a,b\n1,2\n")
        (work / "data" / "lock").write_text("mine")
        (work / "notes.txt").write_text("keep me")
        (work / "rejected").mkdir()
        (work / "rejected" / "mine.txt").write_text("mine too")
        (work / "1234-deadbeef").mkdir()  # looks like a spool folder of the old layout
        (work / "1234-deadbeef" / "lock").write_text("")
        (work / "1234-deadbeef" / "00000000000000000001.mlpb").write_bytes(b"user bytes")
        (work / "mlpulse-spool-7-cafebabe").mkdir()  # our name, but no marker: not ours
        (work / "mlpulse-spool-7-cafebabe" / "00000000000000000001.mlpb").write_bytes(b"x")
        outside.mkdir()
        (outside / "precious.txt").write_text("outside the spool")
        (outside / "lock").write_text("")
        (outside / "00000000000000000001.mlpb").write_bytes(b"outside")
        (work / "shared").symlink_to(outside, target_is_directory=True)
        (work / "mlpulse-spool-8-0badf00d").symlink_to(outside, target_is_directory=True)
        before_work, before_outside = snapshot(work), snapshot(outside)

        monkeypatch.chdir(work)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        options = {"spool_dir": ".", "exit_timeout": 0.2, "retry_for": 0.2, "interval": 0.02}
        first = mlpulse.connect(url, **options)  # the server is down: rows are spooled
        model = first.model("m", version="v1", task="binary", prediction="score")
        for i in range(50):
            model.log(f"r{i}", {"age": 1.0}, prediction=0.5, timestamp=BASE)
        first.close()
        assert first.pending > 0 and first.dropped == 0
        again = mlpulse.connect(url, **options)  # adopts the first one's spool
        again.close()

        server = server_factory("--log-level", "warning", port=port, start=False).start()
        third = mlpulse.connect(url, spool_dir=".")
        assert third.flush(30)
        assert third.model("m", version="v1").metrics(["count"], start="2026-01-05",
                                                      end="2026-01-06")["n"].sum() == 50
        third.close()
        server.stop()
        assert snapshot(work) == before_work  # our own folders are gone, nothing else moved
        assert snapshot(outside) == before_outside

    def test_permissions(self, tmp_path, down_url, monkeypatch):
        """Spool folders are 0700 and spool files 0600 whatever the umask: they hold raw
        feature values."""
        old = os.umask(0o002)
        try:
            pulse = mlpulse.connect(down_url, spool_dir=tmp_path / "sp", retry_for=0.2,
                                    interval=0.02, exit_timeout=0.1)
            model = pulse.model("m", version="v1", task="binary", prediction="score")
            model.log("a", {"age": 41.0}, prediction=0.5)
            assert not pulse.flush(0.3)  # the server is down: the batch is on disk
            own = pulse._transport._spool.dir
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in own.iterdir()}
            assert stat.S_IMODE(own.stat().st_mode) == 0o700
            assert any(n.endswith(".mlpb") for n in modes) and set(modes.values()) == {0o600}
            pulse.close()

            def refuse(request: httpx.Request) -> httpx.Response:
                if request.url.path == "/api/v1/models":
                    return registered(request)
                return httpx.Response(422, json={"detail": "bad", "code": "schema_error"})

            mock_server(monkeypatch, refuse)
            with mlpulse.connect("http://mlpulse.test", spool_dir=tmp_path / "sp") as pulse:
                model = pulse.model("m", version="v1", task="binary", prediction="score")
                with pytest.raises(mlpulse.errors.SchemaError):
                    model.log_batch({"id": ["a"], "score": [0.5]})
            rejected = tmp_path / "sp" / REJECTED
            assert stat.S_IMODE(rejected.stat().st_mode) == 0o700
            kept = list(rejected.iterdir())
            assert kept and {stat.S_IMODE(p.stat().st_mode) for p in kept} == {0o600}
        finally:
            os.umask(old)

    def test_other_servers_spool_is_not_adopted(self, tmp_path):
        """A folder left for one server is never replayed to another."""
        body = arrow_body(["a"])
        left = DiskSpool(tmp_path, 1 << 20, server="http://a:1")
        assert left.append(Envelope(1, "prediction", "m", "v1", {}, "application/vnd.apache"
                                    ".arrow.stream", body, 1))
        left.close()  # non-empty: stays for the next process
        other = DiskSpool(tmp_path, 1 << 20, server="http://b:1")
        assert other.adopt(iter(range(1, 100)).__next__) == 0
        same = DiskSpool(tmp_path, 1 << 20, server="http://a:1/")
        assert same.adopt(iter(range(1, 100)).__next__) == 1
        assert same.peek().path == "/api/v1/models/m/versions/v1/predictions"
        other.close()
        same.pop()
        same.close()
        assert not any(tmp_path.iterdir())

    def test_unusable_spool_dir_is_a_config_error(self, tmp_path, down_url):
        (tmp_path / "file").write_text("not a folder")
        with pytest.raises(ConfigError, match="spool folder"):
            mlpulse.connect(down_url, spool_dir=tmp_path / "file")


class TestPlantedSpoolFiles:
    """A spool file decides neither the method nor the path the client replays with its
    key, nor a file name: planted files go to mlpulse-rejected/, or at most ingest rows."""

    def test_planted_admin_request_is_not_replayed(self, keyed_server, tmp_path):
        server, keys = keyed_server
        victim = keys["read"].split("_")[1]
        attack = {"kind": "prediction", "method": "DELETE", "path": f"/api/v1/keys/{victim}",
                  "params": {}, "content_type": "application/json", "rows": 0,
                  "key": "k" * 32, "encoding": None}
        spool = tmp_path / "sp"
        old_style = plant(spool / "4242-deadbeef", attack)
        old_bytes = old_style.read_bytes()
        marked = plant(spool / "mlpulse-spool-4243-deadbeef", attack | {"format": 2, "model": "m",
                                                                       "version": "v1"},
                       url=server.url)
        with mlpulse.connect(server.url, api_key=keys["admin"], spool_dir=spool) as pulse:
            assert pulse.flush(10)
        listing = httpx.get(server.url + "/api/v1/keys",
                            headers={"Authorization": f"Bearer {keys['admin']}"}).json()["keys"]
        assert all(k["revoked_at"] is None for k in listing)
        assert httpx.get(server.url + "/api/v1/models",
                         headers={"Authorization": f"Bearer {keys['read']}"}).status_code == 200
        assert old_style.read_bytes() == old_bytes  # not ours (no marker): left alone
        assert not marked.exists()
        reasons = [p.read_text() for p in (spool / REJECTED).glob("*.reason")]
        assert len(reasons) == 1 and "unexpected fields ['method', 'path']" in reasons[0]

    def test_valid_file_replays_only_as_an_ingest_of_its_kind(self, tmp_path, monkeypatch):
        """Even a well-formed planted file is an ingest of its kind for its (quoted) model."""
        seen: list[tuple[str, str]] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append((request.method, request.url.raw_path.decode()))
            return httpx.Response(200, json=report(1))

        mock_server(monkeypatch, handler)
        url = "http://mlpulse.test"
        plant(tmp_path / "mlpulse-spool-1-00000001",
              valid_header(model="../keys/x", version="../../admin"), arrow_body(["a"]), url=url)
        with mlpulse.connect(url, spool_dir=tmp_path) as pulse:
            assert pulse.flush(10)
        assert seen == [
            ("POST", "/api/v1/models/..%2Fkeys%2Fx/versions/..%2F..%2Fadmin/predictions?id=id")
        ]

    def test_idempotency_key_never_names_a_file(self, tmp_path, monkeypatch):
        """A key like ../../x writes nothing outside the spool folder."""
        mock_server(monkeypatch, lambda r: httpx.Response(
            404, json={"detail": "unknown model 'm'", "code": "unknown_model"}))
        url = "http://mlpulse.test"
        spool = tmp_path / "a" / "b" / "spool"
        for i, folder in enumerate(("7-0000000a", "mlpulse-spool-7-0000000b")):
            plant(spool / folder, valid_header(key="../../x") | (
                {} if i else {"format": None}), arrow_body(["a"]), url=url if i else None)
        refused = Envelope(0, "feedback", "m", None, {}, "application/vnd.apache.arrow.stream",
                           arrow_body(["b"]), 1, key="../../../y")
        before = snapshot(tmp_path, skip=spool)
        with mlpulse.connect(url, spool_dir=spool) as pulse:
            assert pulse.flush(10)
            pulse._transport._spool.reject(refused, "test")
        assert snapshot(tmp_path, skip=spool) == before
        kept = sorted(p.name for p in (spool / REJECTED).iterdir())
        assert len(kept) == 4 and all(".." not in name for name in kept)
        reasons = " ".join(p.read_text() for p in (spool / REJECTED).glob("*.reason"))
        assert "bad idempotency key" in reasons


class TestPoisonBatch:
    """A batch the server fails again and again is set aside after max_attempts; the
    batches behind it are delivered. A server that is down is retried without limit."""

    def test_poison_batch_goes_to_rejected(self, tmp_path, monkeypatch):
        stored: list[str] = []
        calls = {"poison": 0}

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/v1/models":
                return registered(request)
            ids = ids_of(request)
            if "poison" in ids:
                calls["poison"] += 1
                return httpx.Response(500, text="Internal Server Error")
            stored.extend(ids)
            return httpx.Response(200, json=report(len(ids)))

        mock_server(monkeypatch, handler)
        pulse = mlpulse.connect("http://mlpulse.test", spool_dir=tmp_path, interval=0.02,
                                max_backoff=0.05, max_attempts=4)
        model = pulse.model("m", version="v1", task="binary", prediction="score")
        with pytest.raises(mlpulse.RemoteError, match="HTTP 500"):
            model.log_batch({"id": ["poison"], "score": [0.5]})
        model.log("poison", prediction=0.1)
        assert pulse.flush(10)
        for i in range(3):
            model.log(f"later{i}", prediction=0.2)
        assert pulse.flush(10), "a poison batch stalled the queue"
        assert stored == ["later0", "later1", "later2"]
        assert calls["poison"] == 8 and pulse.rejected == 2
        reasons = [p.read_text() for p in (tmp_path / REJECTED).glob("*.reason")]
        assert len(reasons) == 2 and all("HTTP 500" in r and "4 times" in r for r in reasons)
        pulse.close()

    def test_server_down_is_retried_without_limit(self, tmp_path, monkeypatch):
        answers = iter([503] * 12 + [502] * 3)
        stored: list[str] = []

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/v1/models":
                return registered(request)
            status = next(answers, 200)
            if status != 200:
                return httpx.Response(status)
            stored.extend(ids_of(request))
            return httpx.Response(200, json=report(1))

        mock_server(monkeypatch, handler)
        pulse = mlpulse.connect("http://mlpulse.test", spool_dir=tmp_path, interval=0.02,
                                max_backoff=0.02, max_attempts=2)
        model = pulse.model("m", version="v1", task="binary", prediction="score")
        model.log("a", prediction=0.3)
        assert pulse.flush(10)
        assert stored == ["a"] and pulse.rejected == 0
        pulse.close()

    def test_max_attempts_is_checked(self, down_url, tmp_path):
        with pytest.raises(ConfigError, match="max_attempts"):
            mlpulse.connect(down_url, spool_dir=tmp_path, max_attempts=0)


class TestApiKeys:
    """A key read from a secret file works; a broken key is refused at connect; no log
    line and no error ever carries the key."""

    def test_trailing_newline_is_stripped(self, keyed_server, tmp_path, caplog):
        """A key as read from a secret file works; requests that succeed (which httpx logs
        at INFO) log neither the key nor a password in the URL."""
        server, keys = keyed_server
        secret = keys["admin"].split("_", 2)[2]
        url = server.url.replace("://", "://user:Hunter2Pass@")
        caplog.set_level(logging.DEBUG)
        with mlpulse.connect(url, api_key=keys["admin"] + "\n", spool_dir=tmp_path / "sp",
                             retry_for=1) as pulse:
            model = pulse.model("m", version="v1", task="binary", prediction="score")
            batch = {"id": ["a"], "score": [0.4], "timestamp": [BASE]}
            assert model.log_batch(batch).stored == 1
            model.log("b", prediction=0.3, timestamp=BASE)
            assert pulse.flush(10)
            counts = model.metrics(["count"], start="2026-01-05", end="2026-01-06")
            assert counts["n"].sum() == 2
        assert "HTTP Request: POST" in caplog.text
        assert secret not in caplog.text and "Hunter2Pass" not in caplog.text

    @pytest.mark.parametrize("key", ["mlp_ab\ncd_x", "mlp_ab\x00cd", "mlp ab", "mlp_é", " \n "])
    def test_broken_keys_are_refused(self, key, down_url, tmp_path):
        with pytest.raises(ConfigError, match="api_key") as info:
            mlpulse.connect(down_url, api_key=key, spool_dir=tmp_path)
        assert key.strip() not in str(info.value) or not key.strip()

    def test_nothing_logs_the_key_or_password(self, tmp_path, caplog):
        """Down server, errors, a refused batch: the key and a URL password stay out."""
        caplog.set_level(logging.DEBUG)
        key, password = "mlp_0a1b2c3d_TopSecretValue", "Hunter2Pass"
        url = f"http://user:{password}@127.0.0.1:{free_port()}"
        pulse = mlpulse.connect(url, api_key=key, spool_dir=tmp_path, retry_for=0.3,
                                exit_timeout=0.2, max_backoff=0.05)
        model = pulse.model("m", version="v1", task="binary", prediction="score")
        model.log("a", prediction=0.5)
        assert not pulse.flush(0.5)
        with pytest.raises(mlpulse.ServerUnavailableError) as info:
            model.metrics(["count"])
        pulse.close()
        for text in (caplog.text, str(info.value), repr(pulse)):
            assert "TopSecretValue" not in text and password not in text


class TestFullDisk:
    """A spool that cannot be written keeps batches in memory within its bound; rows are
    dropped and counted only when memory is full too."""

    @staticmethod
    def _no_space(self, path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    def test_rows_wait_in_memory_and_arrive(self, server_factory, tmp_path, monkeypatch,
                                            caplog):
        monkeypatch.setattr(DiskSpool, "_write", self._no_space)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        pulse = mlpulse.connect(url, spool_dir=tmp_path / "sp", interval=0.02, max_backoff=0.1,
                                retry_for=0.2)
        model = pulse.model("m", version="v1", task="binary", prediction="score")
        for batch in range(5):
            for i in range(100):
                model.log(f"r{batch}-{i}", prediction=0.5, timestamp=BASE)
            assert not pulse.flush(0.2)
        report = model.log_batch({"id": ["b1", "b2"], "score": [0.1, 0.9],
                                  "timestamp": [BASE, BASE]})  # no OSError for the caller
        assert report.pending == 2
        assert pulse.dropped == 0 and pulse.pending == 502
        full = [r for r in caplog.records if "disk is full" in r.getMessage()]
        assert len(full) == 1 and "in memory" in full[0].getMessage()
        server = server_factory("--log-level", "warning", port=port, start=False).start()
        assert pulse.flush(30)
        assert model.metrics(["count"], start="2026-01-05", end="2026-01-06")["n"].sum() == 502
        pulse.close()
        server.stop()

    def test_drops_are_counted_when_memory_is_full_too(self, tmp_path, down_url, monkeypatch):
        monkeypatch.setattr(DiskSpool, "_write", self._no_space)
        pulse = mlpulse.connect(down_url, spool_dir=tmp_path, interval=0.02, max_backoff=0.1,
                                max_memory_bytes=1, exit_timeout=0.1, retry_for=0.2)
        model = pulse.model("m", version="v1", task="binary", prediction="score")
        for batch in range(3):
            for i in range(10):
                model.log(f"r{batch}-{i}", prediction=0.5)
            pulse.flush(0.2)
        # the queued registration fills memory (the bound always lets one batch in): the
        # row batches behind it can go neither to disk nor to memory, and are counted
        assert pulse.pending == 0 and pulse.dropped == 30
        pulse.close()
