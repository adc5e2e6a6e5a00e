"""The dashboard on a server with API keys: the pages ask for a read key, keep it in
sessionStorage, send it as a header and never put it in a URL (a real Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpulse.server.keys import KeyStore
from mlpulse.store.database import Store

from .conftest import DEMO_RANGE, Server, Tab, browser_available

pytestmark = pytest.mark.skipif(browser_available() is not None, reason=str(browser_available()))


@pytest.fixture(scope="module")
def keys(
    demo_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, dict[str, str]]]:
    import shutil

    db = tmp_path_factory.mktemp("keyed") / "demo.duckdb"
    shutil.copy(demo_db, db)
    store = Store(str(db))
    try:
        made = {
            scope: KeyStore(store).create(scope, name=f"ui-{scope}") for scope in ("read", "ingest")
        }
    finally:
        store.close()
    started = Server(db).start()
    yield started, made
    started.stop()


@pytest.fixture
def server(keys: tuple[Server, dict[str, str]]) -> Server:  # the tab fixture's server
    return keys[0]


def test_pages_ask_for_a_read_key_and_keep_it_out_of_urls(
    tab: Tab, keys: tuple[Server, dict[str, str]]
) -> None:
    _server, made = keys
    sent: list[tuple[str, str | None]] = []
    tab.page.on("request", lambda r: sent.append((r.url, r.headers.get("authorization"))))
    tab.page.goto(f"{tab.base}/models/churn?{DEMO_RANGE}")
    dialog = tab.page.locator("#key-dialog")
    dialog.wait_for(state="visible")
    assert tab.page.evaluate("document.activeElement.id") == "key-input"
    tab.shot("key-dialog")
    # a key without the read scope is refused, and the dialog says so
    tab.page.fill("#key-input", made["ingest"])
    tab.page.press("#key-input", "Enter")
    tab.page.wait_for_selector("#key-error:not(:empty)")
    assert "scope" in tab.page.inner_text("#key-error")
    tab.page.fill("#key-input", made["read"])
    tab.page.click("#key-submit")
    tab.wait()
    assert sum(tab.trace("chart-volume")["y"]) == 1200
    assert tab.page.evaluate("sessionStorage.getItem('mlpulse.readKey')") == made["read"]
    # the key travels as a header, never in a URL; pages and static files need none
    api_calls = [(u, h) for u, h in sent if "/api/v1/" in u]
    assert api_calls and all(h == f"Bearer {made['read']}" for u, h in api_calls[-5:])
    assert all(made["read"] not in u and made["ingest"] not in u for u, _h in sent)
    assert made["read"] not in tab.page.url
    # the next page of the same tab uses the stored key without asking
    tab.open("/alerts")
    assert tab.page.locator("#key-dialog").is_hidden()
    # the refused key's 401/403 answers are the browser's console errors; expected here
    tab.errors[:] = [e for e in tab.errors if "401" not in e and "403" not in e]


def test_cancelling_the_key_dialog_says_why_the_page_is_empty(tab: Tab) -> None:
    tab.page.goto(f"{tab.base}/")
    tab.page.locator("#key-dialog").wait_for(state="visible")
    tab.page.keyboard.press("Escape")
    tab.wait("error")
    assert "read scope" in tab.page.inner_text("#status")
    # the 401 answers are console errors of the browser; they are expected here
    tab.errors[:] = [e for e in tab.errors if "401" not in e and "403" not in e]
