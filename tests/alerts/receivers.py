"""Real receivers on 127.0.0.1 for the notifier tests: an HTTP server that records what it is
sent and answers from a script, an SMTP sink (aiosmtpd), a self-signed certificate, and an
Alertmanager process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_record(
    status: str = "firing",
    *,
    labels: dict | None = None,
    annotations: dict | None = None,
    fingerprint: str = "0123456789abcdef",
    incident: int | None = 3,
    ends: str | None = None,
) -> dict[str, Any]:
    """A notification record as the evaluator puts it in the outbox (docs/alerts.md)."""
    labels = {
        "alertname": "churn-accuracy-low",
        "model": "churn",
        "version": "v1",
        "metric": "accuracy",
        "severity": "page",
        **(labels or {}),
    }
    annotations = {
        "summary": "churn accuracy 0.71 < 0.8",
        "description": "accuracy over the last hour fell below 0.8",
        "value": "0.71",
        "threshold": "0.8",
        **(annotations or {}),
    }
    resolved = status == "resolved"
    return {
        "status": status,
        "incident": incident,
        "incident_title": "churn: churn-accuracy-low",
        "group_key": f"mlpulse/churn/incident-{incident}",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": "2026-01-01T06:10:00Z",
                "endsAt": ends or ("2026-01-01T08:00:00Z" if resolved else "0001-01-01T00:00:00Z"),
                "generatorURL": "http://127.0.0.1:8765/models/churn",
                "fingerprint": fingerprint,
                "value": 0.71,
                "threshold": 0.8,
            }
        ],
    }


@dataclass
class Request:
    """One request a receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """A ThreadingHTTPServer on 127.0.0.1 that records every request. It answers with the
    statuses of ``script`` in turn, then ``default``; ``hang`` seconds of silence before each
    answer stand for a receiver that does not respond (released at close); with ``echo`` an
    error answer repeats the request body, as some APIs quote what they refused."""

    def __init__(
        self,
        script: list[int] | None = None,
        *,
        default: int = 200,
        hang: float = 0.0,
        echo: bool = False,
    ):
        self.script = list(script or [])
        self.default = default
        self.hang = hang
        self.echo = echo
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size) if size else b""
                request = Request(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with receiver._lock:
                    receiver.requests.append(request)
                    status = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver._arrived.notify_all()
                if receiver.hang:
                    receiver._release.wait(receiver.hang)
                reply = b"ok" if status < 300 else body if receiver.echo else b"receiver says no"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (timeout): nothing to answer

            do_POST = do_PUT = do_GET = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        """The first ``count`` requests, waiting up to ``timeout`` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"got {len(self.requests)} requests, expected {count}")
                self._arrived.wait(left)
            return list(self.requests[:count])


@dataclass
class Mail:
    """One message an SMTP sink accepted."""

    sender: str
    recipients: list[str]
    message: Message
    tls: bool
    login: str | None


@dataclass
class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 keeping the messages it accepts."""

    port: int
    mails: list[Mail] = field(default_factory=list)
    controller: Any = None


class _Recorder:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data
        self.sink.mails.append(
            Mail(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                message_from_bytes(envelope.original_content or envelope.content),
                session.ssl is not None,
                login.decode() if isinstance(login, bytes) else login,
            )
        )
        return "250 OK"


def smtp_sink(*, tls_context: Any = None, logins: dict[str, str] | None = None) -> SmtpSink:
    """Start a sink; with ``tls_context`` it requires STARTTLS, with ``logins`` it requires
    AUTH (user -> password). Stop it with ``sink.controller.stop()``."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        user, password = data.login.decode(), data.password.decode()
        ok = (logins or {}).get(user) == password
        return AuthResult(success=ok, handled=False, auth_data=user)

    sink = SmtpSink(free_port())
    options: dict[str, Any] = {}
    if tls_context is not None:
        options.update(tls_context=tls_context, require_starttls=True)
    if logins is not None:
        options.update(authenticator=authenticate, auth_required=True, auth_require_tls=True)
    sink.controller = Controller(_Recorder(sink), hostname="127.0.0.1", port=sink.port, **options)
    sink.controller.start()
    return sink


def self_signed(directory: Path) -> tuple[Path, Path] | None:
    """A certificate and key for 127.0.0.1 (``cryptography`` if installed, else the openssl
    command), or None when neither is available."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import datetime as dt
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            return None
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


ALERTMANAGER_CONFIG = """\
route:
  receiver: hook
  group_by: [alertname, model]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook}
        send_resolved: true
"""


class Alertmanager:
    """Debian's prometheus-alertmanager on 127.0.0.1, clustering off, routing every alert to
    the webhook ``hook``."""

    def __init__(self, directory: Path, hook: str) -> None:
        self.port = free_port()
        config = directory / "alertmanager.yml"
        config.write_text(ALERTMANAGER_CONFIG.format(hook=hook))
        (directory / "data").mkdir()
        self.log = directory / "alertmanager.log"
        self.process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={config}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"alertmanager did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self) -> list[dict]:
        response = httpx.get(f"{self.url}/api/v2/alerts", timeout=5)
        response.raise_for_status()
        return list(response.json())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
