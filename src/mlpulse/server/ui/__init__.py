"""The web dashboard served by ``mlpulse serve``: server-rendered pages (Jinja2, autoescaped)
whose charts and tables a small plain-JavaScript file fills from the ``/api/v1`` JSON routes,
with plotly.js from the installed ``plotly`` wheel (no CDN, works offline).

Pages carry no data: they are the same for every visitor, so they need no API key; the
browser asks for a read key when the API answers 401 and sends it as a header on each API
call (kept in ``sessionStorage``, never in a URL). Every page is served with a strict
Content-Security-Policy (scripts only from this server, no inline script).
"""

from __future__ import annotations

from .routes import CSP, router

__all__ = ["CSP", "router"]
