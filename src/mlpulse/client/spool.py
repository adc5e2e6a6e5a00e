"""Outbound batches (envelopes) and the bounded on-disk queue that holds them while the
server is unreachable.

Each envelope is one ingest request with its idempotency key, so replaying it after a
crash or a lost answer cannot store anything twice. An envelope records *what* it is (its
kind, model and version), never the HTTP method or path: the client rebuilds the request
from those, so a file planted in the spool can at most ingest rows, never call another
endpoint with the client's key.

Layout under the spool folder ``D`` (which may be shared with anything else, even ``.``)::

    D/mlpulse-spool-<pid>-<hex>/     one per process, 0700, held by an flock on ``lock``
        .mlpulse-spool               marker: format and the server it belongs to
        00000000000000000042.mlpb    envelopes, 0600, replayed oldest first
    D/mlpulse-rejected/              batches the server refused for good, with the reason

A later process for the same server adopts the envelopes of marked folders whose owner
died. Nothing else in ``D`` is ever read, moved or deleted; symbolic links are never
followed; only files named as mlpulse names them are removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger("mlpulse.spool")

FORMAT = 2
ARROW = "application/vnd.apache.arrow.stream"
JSON = "application/json"
MARKER = ".mlpulse-spool"
REJECTED = "mlpulse-rejected"
_OWNER = re.compile(r"mlpulse-spool-[0-9]+-[0-9a-f]{8}\Z")
_ENTRY = re.compile(r"[0-9]{20}\.mlpb\Z")
_PARTIAL = re.compile(r"[0-9]{20}\.tmp\Z")
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

#: Query parameters each kind of request may carry (anything else in a file is refused).
_PARAMS: dict[str, frozenset[str]] = {
    "register": frozenset(),
    "reference": frozenset({"features", "recommended_rules"}),
    "prediction": frozenset({"id", "timestamp", "prediction"}),
    "feedback": frozenset({"id", "timestamp", "label"}),
}
_FIELDS = {"format", "kind", "model", "version", "params", "content_type", "rows", "key",
           "encoding"}  # fmt: skip


class SpoolFileError(ValueError):
    """A spool file that this client did not write (or cannot read); it is never replayed."""


@dataclass
class Envelope:
    """One ingest request to deliver: kind, model, version, params, body and idempotency key.

    The method and path follow from the kind (see :attr:`path`); they are never stored.

    >>> e = Envelope(0, "prediction", "churn/eu", "v1", {"id": "id"}, ARROW, b"", 0)
    >>> e.method, e.path
    ('POST', '/api/v1/models/churn%2Feu/versions/v1/predictions')
    """

    seq: int
    kind: str  # register | reference | prediction | feedback
    model: str
    version: str | None
    params: dict[str, Any]
    content_type: str
    body: bytes
    rows: int
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    encoding: str | None = None
    # in-process only: a caller waiting for this envelope's answer
    done: threading.Event | None = field(default=None, repr=False, compare=False)
    result: Any = field(default=None, repr=False, compare=False)
    error: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def method(self) -> str:
        return "PUT" if self.kind == "reference" else "POST"

    @property
    def path(self) -> str:
        """The endpoint for this kind, built from the (quoted) model and version names."""
        if self.kind == "register":
            return "/api/v1/models"
        model = f"/api/v1/models/{quote(self.model, safe='')}"
        if self.kind == "feedback":
            return f"{model}/feedback"
        version = quote(str(self.version), safe="")
        leaf = "reference" if self.kind == "reference" else "predictions"
        return f"{model}/versions/{version}/{leaf}"

    def headers(self) -> dict[str, str]:
        out = {"Content-Type": self.content_type, "Idempotency-Key": self.key}
        if self.encoding:
            out["Content-Encoding"] = self.encoding
        return out

    def dump(self) -> bytes:
        head = json.dumps(
            {
                "format": FORMAT,
                "kind": self.kind,
                "model": self.model,
                "version": self.version,
                "params": self.params,
                "content_type": self.content_type,
                "rows": self.rows,
                "key": self.key,
                "encoding": self.encoding,
            }
        ).encode()
        return len(head).to_bytes(4, "big") + head + self.body

    @classmethod
    def load(cls, seq: int, data: bytes) -> Envelope:
        """Read a spool file; :class:`SpoolFileError` unless it is exactly what
        :meth:`dump` writes (this format, a known kind, allowed parameters, a safe key)."""
        try:
            size = int.from_bytes(data[:4], "big")
            head = json.loads(data[4 : 4 + size])
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpoolFileError(f"not an mlpulse spool file ({exc})") from None
        if not isinstance(head, dict) or head.get("format") != FORMAT:
            raise SpoolFileError("not an mlpulse spool file of this version")
        if set(head) != _FIELDS:
            raise SpoolFileError(f"unexpected fields {sorted(set(head) ^ _FIELDS)}")
        _check(head)
        del head["format"]
        return cls(seq=seq, body=data[4 + size :], **head)


def _check(head: dict[str, Any]) -> None:
    kind = head["kind"]
    if kind not in _PARAMS:
        raise SpoolFileError(f"unknown kind {kind!r}")
    if not isinstance(head["model"], str) or not head["model"]:
        raise SpoolFileError("no model name")
    version = head["version"]
    if not (version is None or isinstance(version, str)) or (
        kind in ("prediction", "reference") and not version
    ):
        raise SpoolFileError("no model version")
    params = head["params"]
    if not isinstance(params, dict) or not set(params) <= _PARAMS[kind]:
        raise SpoolFileError(f"parameters not allowed for a {kind} batch")
    for value in params.values():
        if not (isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )):
            raise SpoolFileError("parameter values must be text")
    if head["content_type"] != (JSON if kind == "register" else ARROW):
        raise SpoolFileError("unexpected content type")
    if head["encoding"] not in (None, "gzip"):
        raise SpoolFileError("unexpected content encoding")
    if not isinstance(head["rows"], int) or isinstance(head["rows"], bool) or head["rows"] < 0:
        raise SpoolFileError("bad row count")
    if not isinstance(head["key"], str) or not _KEY.match(head["key"]):
        raise SpoolFileError("bad idempotency key")


def server_id(url: str) -> str:
    """The short hash a spool marker records, so a folder is replayed only to its server."""
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


def _write_new(path: str | Path, data: bytes, dir_fd: int | None = None) -> None:
    """Create ``path`` (never an existing file, never through a link) as 0600 and write it."""
    fd = os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=dir_fd
    )
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _read_regular(name: str | Path, dir_fd: int | None = None) -> bytes:
    """The bytes of a regular file (never through a link; a FIFO does not block)."""
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SpoolFileError(f"{name} is not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _open_dir(path: str | Path, dir_fd: int | None = None) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


class DiskSpool:
    """A bounded FIFO of envelopes in a marked folder of ``root``; ``max_bytes`` caps it.

    ``server`` (the URL) is recorded in the marker: :meth:`adopt` takes over only folders
    left for the same server.
    """

    def __init__(self, root: str | os.PathLike[str], max_bytes: int, server: str = "") -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.server = server_id(server)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.dir = self.root / f"mlpulse-spool-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir(mode=0o700)
        os.chmod(self.dir, 0o700)  # whatever the umask: envelopes hold raw feature values
        _write_new(self.dir / MARKER, self._marker())
        self._lock_fd = os.open(
            self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600
        )
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._files: list[tuple[int, Path, int, int]] = []  # (seq, path, size, rows), oldest first
        self.bytes = 0
        self.rows = 0
        self._warned_at = -float("inf")

    def _marker(self) -> bytes:
        return json.dumps({"format": FORMAT, "server": self.server}).encode()

    # -- adoption ---------------------------------------------------------------------

    def adopt(self, next_seq: Callable[[], int]) -> int:
        """Take over the envelopes of dead owners for the same server (in their order);
        return how many."""
        adopted = 0
        try:
            with _open_dir(self.root) as root_fd:
                names = sorted(n for n in os.listdir(root_fd) if _OWNER.match(n))
                for name in names:
                    if name != self.dir.name:
                        adopted += self._adopt_one(root_fd, name, next_seq)
        except OSError as exc:
            log.warning("mlpulse: could not look for spooled batches in %s: %s", self.root, exc)
        if adopted:
            log.info("mlpulse: replaying %d spooled batches left by an earlier process", adopted)
        return adopted

    def _adopt_one(self, root_fd: int, name: str, next_seq: Callable[[], int]) -> int:
        try:
            info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                return 0
            with _open_dir(name, dir_fd=root_fd) as fd:
                try:
                    if json.loads(_read_regular(MARKER, fd)) != json.loads(self._marker()):
                        return 0  # another server's (or another format's) spool
                except (OSError, ValueError):
                    return 0  # not marked: not ours
                try:
                    lock = os.open("lock", os.O_RDWR | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
                except OSError:
                    return 0
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # its owner is alive
                    os.close(lock)
                    return 0
                try:
                    return self._take_over(fd, name, root_fd, next_seq)
                finally:
                    os.close(lock)
        except OSError as exc:
            log.warning("mlpulse: could not adopt spool %s: %s", self.root / name, exc)
            return 0

    def _take_over(self, fd: int, name: str, root_fd: int, next_seq: Callable[[], int]) -> int:
        adopted = 0
        for entry in sorted(n for n in os.listdir(fd) if _ENTRY.match(n)):
            try:
                data = _read_regular(entry, fd)
            except (OSError, SpoolFileError) as exc:  # a link, a FIFO...: not ours, left alone
                log.warning("mlpulse: skipped %s: %s", self.root / name / entry, exc)
                continue
            seq = next_seq()
            try:
                envelope = Envelope.load(seq, data)
            except SpoolFileError as exc:
                log.error("mlpulse: spool file %s not replayed: %s", self.root / name / entry, exc)
                self._keep_rejected(data, str(exc), entry)
                os.unlink(entry, dir_fd=fd)
                continue
            path = self.dir / f"{seq:020d}.mlpb"
            _write_new(path, data)  # a copy of our own: 0600, and never a link
            os.unlink(entry, dir_fd=fd)
            self._files.append((seq, path, len(data), envelope.rows))
            self.bytes += len(data)
            self.rows += envelope.rows
            adopted += 1
        for entry in os.listdir(fd):
            if _PARTIAL.match(entry) or entry in (MARKER, "lock"):
                os.unlink(entry, dir_fd=fd)  # what a crash left mid-write, and our markers
        try:
            os.rmdir(name, dir_fd=root_fd)
        except OSError:
            log.warning(
                "mlpulse: left %s in place: it holds files mlpulse did not write", self.root / name
            )
        return adopted

    # -- the queue --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._files)

    def append(self, envelope: Envelope) -> bool:
        """Write an envelope; False (and nothing written) when the spool is full or cannot
        be written (a full disk, say: the caller keeps the batch in memory instead)."""
        data = envelope.dump()
        if self.bytes + len(data) > self.max_bytes:
            return False
        path = self.dir / f"{envelope.seq:020d}.mlpb"
        tmp = path.with_suffix(".tmp")
        try:
            self._write(tmp, data)
            os.replace(tmp, path)  # a crash leaves a whole file or none
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._warn_unwritable(exc)
            return False
        self._files.append((envelope.seq, path, len(data), envelope.rows))
        self._files.sort(key=lambda item: item[0])
        self.bytes += len(data)
        self.rows += envelope.rows
        return True

    def _write(self, path: Path, data: bytes) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a partial file of ours from an earlier failed attempt
        _write_new(path, data)

    def _warn_unwritable(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._warned_at < 60.0:
            return
        self._warned_at = now
        why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "it failed"
        log.error(
            "mlpulse: cannot write to the spool %s (%s: %s); batches wait in memory instead "
            "(up to max_memory_bytes) and are dropped only past that bound",
            self.dir,
            why,
            exc.strerror or exc,
        )

    def head_seq(self) -> int | None:
        return self._files[0][0] if self._files else None

    def peek(self) -> Envelope | None:
        """The oldest envelope; a file that cannot be read back is set aside in
        ``mlpulse-rejected/`` (never replayed) and the next one is returned."""
        while self._files:
            seq, path, _size, _rows = self._files[0]
            data = b""
            try:
                data = _read_regular(path)
                return Envelope.load(seq, data)
            except (OSError, SpoolFileError) as exc:
                log.error("mlpulse: spool file %s not replayed: %s", path, exc)
                if data:
                    self._keep_rejected(data, str(exc), path.name)
                self.pop()
        return None

    def pop(self) -> None:
        _seq, path, size, rows = self._files.pop(0)
        self.bytes -= size
        self.rows -= rows
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    # -- rejected batches ----------------------------------------------------------------

    def reject(self, envelope: Envelope, reason: str) -> Path | None:
        """Keep a batch the server refused for good in ``mlpulse-rejected/`` (never replayed)."""
        return self._keep_rejected(envelope.dump(), reason, f"{envelope.kind} batch")

    def _keep_rejected(self, data: bytes, reason: str, what: str) -> Path | None:
        # named by time and a random suffix: nothing from the batch goes into a file name
        folder = self.root / REJECTED
        stem = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        try:
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o700)
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode):
                raise OSError(errno.ENOTDIR, "not a directory (a link?)", str(folder))
            with _open_dir(folder) as fd:
                _write_new(f"{stem}.mlpb", data, dir_fd=fd)
                _write_new(f"{stem}.reason", f"{what}: {reason}\n".encode(), dir_fd=fd)
            return folder / f"{stem}.mlpb"
        except OSError as exc:
            log.error("mlpulse: could not keep a rejected batch in %s: %s", folder, exc)
            return None

    def close(self) -> None:
        """Release the folder; an empty one is removed, a non-empty one waits for the next
        process (or this one's next start) to replay it."""
        try:
            if not self._files:
                with _open_dir(self.dir) as fd:
                    for entry in os.listdir(fd):
                        if _ENTRY.match(entry) or _PARTIAL.match(entry) or entry in (
                            MARKER,
                            "lock",
                        ):
                            os.unlink(entry, dir_fd=fd)
                self.dir.rmdir()
        except OSError:
            pass
        os.close(self._lock_fd)


__all__ = ["ARROW", "JSON", "REJECTED", "DiskSpool", "Envelope", "SpoolFileError", "server_id"]
