"""The dashboard's pages and static files over HTTP, without a browser: escaping, headers
(CSP and friends), no data and no key in the HTML, plotly.js from the installed wheel, and
the pages kept out of the API schema."""

from __future__ import annotations

import gzip
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import plotly
import pytest

import mlpulse
from mlpulse.server import ServerConfig, create_app
from mlpulse.service import Service

with warnings.catch_warnings():  # starlette's TestClient would rather have httpx2
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

HOSTILE = [
    "<script>alert(1)</script>".replace("/", ""),
    '"onerror=alert(1) x="',
    "'><img src=x onerror=alert(1)>",
    "{{ 7*7 }}",
    "%3Cb%3E",
    "a&b",
]
PAGES = [
    "/",
    "/models/churn",
    "/models/churn/features?column=age",
    "/models/churn/rows",
    "/alerts",
    "/incidents/1",
]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    service = Service.open(":memory:")
    try:
        with TestClient(create_app(ServerConfig(db=":memory:"), service)) as c:
            yield c
    finally:
        service.close()


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_strict_headers_and_no_inline_script(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert csp["script-src"] == "'self'" and csp["default-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    # every script is a file of this server; no inline script or handler attribute
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts and all('src="/ui/static/' in attrs and body == "" for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", page.text)


@pytest.mark.parametrize("name", HOSTILE)
def test_names_from_the_url_are_escaped(client: TestClient, name: str) -> None:
    model = client.get(f"/models/{quote(name, safe='')}")
    feature = client.get(f"/models/x/features?column={quote(name, safe='')}")
    for page in (model, feature):
        assert page.status_code == 200
        assert "<img" not in page.text and "<script>alert" not in page.text
        assert (
            'onerror=alert(1) x="' not in page.text
        )  # the quote that would end the attribute is escaped
        assert "49" not in page.text.split("<body", 1)[1]  # not evaluated as a template


def test_pages_hold_no_data(client: TestClient) -> None:
    """A page is the same with or without data: the browser fetches it with its key."""
    empty = client.get("/models/churn").text
    service = client.app.state.service
    service.register("churn", "v1", task="binary", prediction="score", label="y", features=["age"])
    assert client.get("/models/churn").text == empty


def test_plotly_comes_from_the_installed_wheel(client: TestClient) -> None:
    wheel = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    plain = client.get("/ui/static/plotly.min.js", headers={"accept-encoding": "identity"})
    assert plain.status_code == 200 and plain.content == wheel
    assert plain.headers["content-type"].startswith("text/javascript")
    zipped = client.get("/ui/static/plotly.min.js", headers={"accept-encoding": "gzip"})
    assert (
        zipped.headers["content-encoding"] == "gzip" and zipped.content == wheel
    )  # decoded by httpx
    again = client.get("/ui/static/plotly.min.js", headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert len(gzip.compress(wheel)) < len(wheel) / 2
    assert client.get("/ui/static/../app.py").status_code == 404
    assert client.get("/ui/static/nope.js").status_code == 404


def test_pages_link_their_own_static_files_with_a_version(client: TestClient) -> None:
    page = client.get("/").text
    for src in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page):
        assert client.get(src.replace("&amp;", "&")).status_code == 200
    assert re.search(r'/ui/static/app\.js\?v=[0-9a-f]{12}"', page)


def test_pages_are_not_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert all(
        p.startswith("/api/") or p in ("/healthz", "/readyz", "/metrics") or p.startswith("/v1/")
        for p in paths
    ), sorted(paths)


def test_root_path_prefixes_every_link() -> None:
    service = Service.open(":memory:")
    try:
        app = create_app(ServerConfig(db=":memory:"), service)  # the proxy sets root_path
        with TestClient(app, root_path="/pulse") as c:
            page = c.get("/pulse/models/churn").text
    finally:
        service.close()
    assert 'data-root="/pulse"' in page and 'src="/pulse/ui/static/app.js' in page
    assert 'href="/pulse/alerts"' in page


def test_incident_ids_are_numbers(client: TestClient) -> None:
    assert client.get("/incidents/abc").status_code == 422


def test_mlpulse_exports_nothing_new() -> None:
    assert not hasattr(mlpulse, "ui")


def test_the_demo_ends_with_the_command_that_opens_its_dashboard(tmp_path: Path) -> None:
    from mlpulse.demo import DemoConfig, dashboard_lines

    db = tmp_path / "my demo.duckdb"
    (line,) = dashboard_lines(DemoConfig(duration="90m", db=str(db)))
    assert line.startswith(f"dashboard: mlpulse serve --db '{db}'")
    assert line.endswith("http://127.0.0.1:8765/models/churn?end=2026-01-01T02:00:00Z&range=2h")
    assert dashboard_lines(DemoConfig(db=":memory:")) == []
