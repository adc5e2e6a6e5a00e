"""Fixtures of the dashboard tests: a small demo database (with hostile names logged beside
the demo's model), a real ``mlpulse serve`` on it, and one headless Chromium driven by
Playwright (Debian's ``/usr/bin/chromium``; nothing is downloaded).

Screenshots go to ``$MLPULSE_ARTIFACTS`` (default ``tests/ui/artifacts``, git-ignored); with
``MLPULSE_DOCS_IMG=1`` the ones docs/dashboard.md shows are also written to ``docs/img``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from _server import ServerProcess, free_port

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MLPULSE_ARTIFACTS") or Path(__file__).parent / "artifacts")
DOCS_IMG = REPO / "docs" / "img"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: the demo's span, and the query string that shows all of it
DEMO_SPAN = "2h"
DEMO_END = "2026-01-01T02:00:00Z"
DEMO_RANGE = f"end={DEMO_END}&range={DEMO_SPAN}"

#: names that would run script if they reached the page as HTML; each sets window.__xss
XSS_MODEL = (
    "<script>window.__xss='model'<img src=x onerror=window.__xss='model'>"  # no '/': a path name
)
XSS_FEATURES = ["\"onerror=window.__xss='feature' x=\"", "<img src=x onerror=window.__xss='img'>"]
XSS_SEGMENT = "<svg><b>\"seg'"  # segment columns may not hold '='
XSS_SEGMENT_VALUE = "<img src=x onerror=window.__xss='value'>"
XSS_VERSION = "v\"><img src=x onerror=window.__xss='version'>"
XSS_RULE = "xss-<img src=x onerror=window.__xss='rule'>"


def browser_available() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not CHROMIUM.exists():
        return "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs the playwright package (pip install -e '.[test]')"
    return None


class Server(ServerProcess):
    """``mlpulse serve`` on ``db`` in a child process (tests/_server.py), logging warnings."""

    def __init__(self, db: Path, *args: str) -> None:
        super().__init__(db, "--log-level", "warning", *args)


def log_hostile_model(db: str) -> None:
    """A model whose name, version, features, segment column and value, and alert rule
    hold HTML and script, with predictions and labels in the demo's span, a few
    quarantined rows, and predictions five minutes ago that keep its alert firing."""
    import mlpulse
    from mlpulse.demo import ORIGIN

    rng = np.random.default_rng(3)
    n = 400

    def frame(size: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                XSS_FEATURES[0]: rng.normal(0, 1, size),
                XSS_FEATURES[1]: rng.normal(5, 2, size),
                XSS_SEGMENT: rng.choice([XSS_SEGMENT_VALUE, "plain"], size),
                "score": rng.uniform(0, 1, size),
            }
        )

    pulse = mlpulse.connect(db)
    try:
        reference = frame(500)
        reference["label"] = (reference["score"] > 0.5).astype(int)
        model = pulse.model(
            XSS_MODEL,
            version=XSS_VERSION,
            task="binary",
            reference=reference,
            prediction="score",
            label="label",
            segments=[XSS_SEGMENT],
            recommended_rules=False,
        )
        rows = frame(n)
        rows["id"] = [f"x{i}" for i in range(n)]
        rows["ts"] = [ORIGIN + timedelta(seconds=int(s)) for s in np.linspace(0, 7000, n)]
        model.log_batch(rows, id="id", timestamp="ts")
        # and some now: the server's own evaluation (at wall-clock time) keeps its rule firing
        recent = frame(50)
        recent["id"] = [f"now{i}" for i in range(50)]
        recent["ts"] = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=5)
        model.log_batch(recent, id="id", timestamp="ts")
        labels = pd.DataFrame({"id": rows["id"], "label": (rows["score"] > 0.4).astype(int)})
        model.log_feedback_batch(labels, id="id", label="label")
        bad = frame(3)
        bad["score"] = [float("nan"), 2.0, -1.0]
        bad["id"] = ["<b>q1</b>", "q2", "q3"]
        bad["ts"] = [ORIGIN + timedelta(minutes=30)] * 3
        model.log_batch(bad, id="id", timestamp="ts")
        pulse.rules.load(
            [
                {
                    "name": XSS_RULE,
                    "model": XSS_MODEL,
                    "metric": "count",
                    "window": "1h",
                    "op": ">",
                    "threshold": 0,
                    "min_rows": 0,
                    "annotations": {"summary": "<script>window.__xss='summary'</script> {{value}}"},
                }
            ]
        )
        pulse.evaluate(at=ORIGIN + timedelta(hours=2))
    finally:
        pulse.close()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's churn model over two hours (its drift alert fires), and the hostile
    model. Built once per test session."""
    from mlpulse.demo import DemoConfig, run_demo

    db = tmp_path_factory.mktemp("dashboard") / "demo.duckdb"
    run_demo(DemoConfig(duration=DEMO_SPAN, rate=10, db=str(db), quiet=True))
    log_hostile_model(str(db))
    return db


@pytest.fixture(scope="module")
def server(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # a copy: a server owns its file, and another module may serve the same data
    db = tmp_path_factory.mktemp("served") / "demo.duckdb"
    shutil.copy(demo_db, db)
    started = Server(db).start()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, with a fresh profile. Every test gets a new
    page (``tab``); the modules' servers listen on different ports, so a key one page kept
    in sessionStorage (per page and origin) never reaches another module's pages."""
    reason = browser_available()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="mlpulse-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 900},
            )
            yield context
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Tab:
    """A page and what its console said."""

    page: Any
    base: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def open(self, path: str, state: str = "ready") -> Tab:
        self.page.goto(self.base + path)
        self.wait(state)
        return self

    def wait(self, state: str = "ready", loads: int | None = None) -> None:
        selector = f"body[data-state={state}]"
        if loads is not None:
            selector += f'[data-loads="{loads}"]'
        self.page.wait_for_selector(selector, state="attached", timeout=120_000)

    @property
    def loads(self) -> int:
        return int(self.page.evaluate("document.body.dataset.loads || '0'"))

    def points(self, chart: str) -> list[int]:
        """The number of x values of each trace of a plotly chart."""
        return self.page.evaluate(
            "id => (document.getElementById(id).data || []).map(t => (t.x || []).length)", chart
        )

    def trace(self, chart: str, index: int = 0) -> dict[str, Any]:
        return self.page.evaluate(
            "([id, i]) => { const t = document.getElementById(id).data[i]; "
            "return {x: Array.from(t.x || []), y: Array.from(t.y || []), name: t.name}; }",
            [chart, index],
        )

    def shot(self, name: str, docs: bool = False) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        if docs and os.environ.get("MLPULSE_DOCS_IMG") == "1":
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, DOCS_IMG / f"dashboard-{name}.png")
        return path

    def xss(self) -> Any:
        return self.page.evaluate("window.__xss")


@pytest.fixture
def tab(browser: Any, server: Server) -> Iterator[Tab]:
    """A fresh page on the module's server; fails the test on any console error, page
    error or dialog."""
    page = browser.new_page()
    opened = Tab(page, server.url)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(f"page error: {e}"))

    def on_dialog(dialog: Any) -> None:
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield opened
    page.close()
    assert opened.errors == [], opened.errors
    assert opened.dialogs == [], opened.dialogs


def api(server: Server, path: str, **kw: Any) -> Any:
    response = httpx.get(f"{server.url}/api/v1{path}", timeout=60, **kw)
    response.raise_for_status()
    return response.json()


__all__ = ["Server", "Tab", "api", "browser_available", "free_port"]
