"""Outbound batches (envelopes) and the bounded on-disk queue that holds them while the
server is unreachable.

Each envelope is one HTTP request with its idempotency key, so replaying it after a crash
or a lost answer cannot store anything twice. The spool is a directory of files named by
sequence number; it is replayed oldest first. A process owns its own subdirectory (held by
an ``flock``); a later process for the same server adopts the files of owners that died.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("mlpulse.spool")

_SUFFIX = ".mlpb"


@dataclass
class Envelope:
    """One request to deliver: method, path, params, body, headers and idempotency key."""

    seq: int
    kind: str  # register | reference | prediction | feedback
    method: str
    path: str
    params: dict[str, str]
    content_type: str
    body: bytes
    rows: int
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    encoding: str | None = None
    # in-process only: a caller waiting for this envelope's answer
    done: threading.Event | None = field(default=None, repr=False, compare=False)
    result: Any = field(default=None, repr=False, compare=False)
    error: BaseException | None = field(default=None, repr=False, compare=False)

    def headers(self) -> dict[str, str]:
        out = {"Content-Type": self.content_type, "Idempotency-Key": self.key}
        if self.encoding:
            out["Content-Encoding"] = self.encoding
        return out

    def dump(self) -> bytes:
        head = json.dumps(
            {
                "kind": self.kind,
                "method": self.method,
                "path": self.path,
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
        size = int.from_bytes(data[:4], "big")
        head = json.loads(data[4 : 4 + size])
        return cls(seq=seq, body=data[4 + size :], **head)


class DiskSpool:
    """A bounded FIFO of envelopes in ``root/<owner>/``; ``max_bytes`` caps its size."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self.dir = self.root / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir()
        self._lock_file = open(self.dir / "lock", "w")  # noqa: SIM115 - held for our lifetime
        fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._files: list[tuple[int, Path, int, int]] = []  # (seq, path, size, rows), oldest first
        self.bytes = 0
        self.rows = 0

    def adopt(self, next_seq: Any) -> int:
        """Take over the envelopes of dead owners (in their order); return how many."""
        adopted = 0
        for other in sorted(
            p for p in self.root.iterdir() if p.is_dir() and p != self.dir and p.name != "rejected"
        ):
            try:
                handle = open(other / "lock", "a")  # noqa: SIM115
            except OSError:
                continue
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its owner is alive
                handle.close()
                continue
            try:
                for path in sorted(other.glob(f"*{_SUFFIX}")):
                    seq = next_seq()
                    target = self.dir / f"{seq:020d}{_SUFFIX}"
                    os.replace(path, target)
                    data = target.read_bytes()
                    rows = Envelope.load(seq, data).rows
                    self._files.append((seq, target, len(data), rows))
                    self.bytes += len(data)
                    self.rows += rows
                    adopted += 1
                for leftover in other.iterdir():
                    leftover.unlink()
                other.rmdir()
            except OSError as exc:
                log.warning("mlpulse: could not adopt spool %s: %s", other, exc)
            finally:
                handle.close()
        if adopted:
            log.info("mlpulse: replaying %d spooled batches left by an earlier process", adopted)
        return adopted

    def __len__(self) -> int:
        return len(self._files)

    def append(self, envelope: Envelope) -> bool:
        """Write an envelope; False (and nothing written) when the spool is full."""
        data = envelope.dump()
        if self.bytes + len(data) > self.max_bytes:
            return False
        path = self.dir / f"{envelope.seq:020d}{_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)  # a crash leaves a whole file or none
        self._files.append((envelope.seq, path, len(data), envelope.rows))
        self._files.sort(key=lambda item: item[0])
        self.bytes += len(data)
        self.rows += envelope.rows
        return True

    def head_seq(self) -> int | None:
        return self._files[0][0] if self._files else None

    def peek(self) -> Envelope | None:
        if not self._files:
            return None
        seq, path, _size, _rows = self._files[0]
        return Envelope.load(seq, path.read_bytes())

    def pop(self) -> None:
        _seq, path, size, rows = self._files.pop(0)
        self.bytes -= size
        self.rows -= rows
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def reject(self, envelope: Envelope, reason: str) -> Path | None:
        """Keep a batch the server refused for good in ``root/rejected/`` (never replayed)."""
        folder = self.root / "rejected"
        try:
            folder.mkdir(exist_ok=True)
            path = folder / f"{envelope.key}.rejected"
            path.write_bytes(envelope.dump())
            path.with_suffix(".reason").write_text(reason + "\n")
            return path
        except OSError as exc:
            log.error("mlpulse: could not keep a rejected batch: %s", exc)
            return None

    def close(self) -> None:
        """Release the directory; an empty one is removed, a non-empty one waits for the
        next process (or this one's next start) to replay it."""
        try:
            if not self._files:
                for leftover in self.dir.iterdir():
                    leftover.unlink()
                self.dir.rmdir()
        except OSError:
            pass
        self._lock_file.close()


__all__ = ["DiskSpool", "Envelope"]
