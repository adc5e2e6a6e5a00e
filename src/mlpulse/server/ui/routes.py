"""Dashboard pages and their static files.

Every page is a skeleton rendered by Jinja2 with autoescaping on: names from the URL (model,
feature, incident id) appear only as escaped text and ``data-*`` attributes; the charts and
tables are filled in the browser by ``static/app.js`` from the ``/api/v1`` routes, so each
page has a JSON twin and there is one query path. The pages are left out of the OpenAPI
schema (they are not API).

>>> html = _env.get_template("model.html").render(
...     root="", version="0", static="/ui/static", asset="x", page="model", model="<b>")
>>> "&lt;b&gt;" in html, "<b>" in html
(True, False)
>>> "script-src 'self'" in CSP and "unsafe-eval" not in CSP
True
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ... import __version__

HERE = Path(__file__).resolve().parent

#: The Content-Security-Policy of every dashboard page: scripts, styles, images and API
#: calls from this server only; no inline script, no eval, no frames, no plugins.
#: ``style-src 'unsafe-inline'``: plotly.js positions its hover labels and legends with
#: inline ``style`` attributes (styles cannot run code; scripts stay strict).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every {{ value }} is HTML-escaped, in text and in attributes
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["segment"] = lambda value: quote(str(value), safe="")

router = APIRouter(include_in_schema=False)

ModelName = Annotated[str, PathParam(min_length=1, max_length=200)]


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    root = str(request.scope.get("root_path") or "").rstrip("/")
    html = _env.get_template(template).render(
        root=root, version=__version__, static=f"{root}/ui/static", asset=_ASSET_TAG, **context
    )
    return HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS)


@router.get("/")
def overview(request: Request) -> HTMLResponse:
    """Every model: health, volume, key SLI with label coverage, estimate, firing alerts."""
    return _page(request, "overview.html", page="overview", model=None)


@router.get("/models/{name}")
def model_page(request: Request, name: ModelName) -> HTMLResponse:
    """One model: volume, latency, predictions, SLIs, drift heatmap, quality, filters."""
    return _page(request, "model.html", page="model", model=name)


@router.get("/models/{name}/features")
def feature_page(
    request: Request,
    name: ModelName,
    column: Annotated[str, Query(min_length=1, max_length=256)],
) -> HTMLResponse:
    """One feature (a query parameter: column names may hold ``/`` or be ``..``)."""
    return _page(request, "feature.html", page="feature", model=name, column=column)


@router.get("/models/{name}/rows")
def rows_page(request: Request, name: ModelName) -> HTMLResponse:
    """Raw rows and quarantined rows of one model."""
    return _page(request, "rows.html", page="rows", model=name)


@router.get("/alerts")
def alerts_page(request: Request) -> HTMLResponse:
    """Alerts, incidents and silences."""
    return _page(request, "alerts.html", page="alerts", model=None)


@router.get("/incidents/{incident_id}")
def incident_page(
    request: Request, incident_id: Annotated[int, PathParam(ge=-(2**63), le=2**63 - 1)]
) -> HTMLResponse:
    """One incident: its alerts, timeline and root cause."""
    return _page(request, "incident.html", page="incident", model=None, incident=incident_id)


# -- static files ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


_FILES = {
    "app.js": ("text/javascript; charset=utf-8", lambda: HERE / "static" / "app.js"),
    "app.css": ("text/css; charset=utf-8", lambda: HERE / "static" / "app.css"),
    "plotly.min.js": ("text/javascript; charset=utf-8", _plotly_js),
}
_assets: dict[str, _Asset] = {}
_lock = threading.Lock()


def _asset(name: str) -> _Asset:
    with _lock:
        found = _assets.get(name)
        if found is None:
            media_type, where = _FILES[name]
            body = where().read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            found = _Asset(body, gzip.compress(body, 6, mtime=0), media_type, etag)
            _assets[name] = found
        return found


def _asset_tag() -> str:
    """A short hash of the dashboard's own files, appended to their URLs so that a new
    release is never served from a browser's cache."""
    digest = hashlib.sha256(__version__.encode())
    for name in ("app.js", "app.css"):
        digest.update((HERE / "static" / name).read_bytes())
    return digest.hexdigest()[:12]


_ASSET_TAG = _asset_tag()


@router.get("/ui/static/{filename}")
def static_file(request: Request, filename: str) -> Response:
    """``app.js``, ``app.css`` and ``plotly.min.js`` (gzip when the browser accepts it)."""
    if filename not in _FILES:
        return Response("not found", status_code=404, media_type="text/plain")
    asset = _asset(filename)
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "public, max-age=86400",
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


__all__ = ["CSP", "router"]
