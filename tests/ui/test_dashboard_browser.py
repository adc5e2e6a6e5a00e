"""The web dashboard in a real headless Chromium against ``mlpulse serve`` on the demo's
data: every page loads with no console error, charts hold the expected number of points,
filters and ranges change the data (and the URL), a fired alert and its incident appear,
hostile names never execute, and the pages work with a keyboard and at phone width.

One server and one browser serve the whole module (see conftest.py)."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest

from .conftest import (
    DEMO_RANGE,
    XSS_FEATURES,
    XSS_MODEL,
    XSS_RULE,
    XSS_SEGMENT,
    XSS_SEGMENT_VALUE,
    XSS_VERSION,
    Server,
    Tab,
    api,
    browser_available,
)

pytestmark = pytest.mark.skipif(browser_available() is not None, reason=str(browser_available()))

CHURN = f"/models/churn?{DEMO_RANGE}"
WINDOW = "start=2026-01-01T00:00:00Z&end=2026-01-01T02:00:00Z"


def test_overview_lists_models_with_health_and_volume(tab: Tab, server: Server) -> None:
    tab.open(f"/?{DEMO_RANGE}")
    rows = tab.page.locator("#models tbody tr")
    assert rows.count() == 2
    churn = tab.page.locator('#models tbody tr[data-model="churn"]')
    text = churn.inner_text()
    assert "accuracy" in text and "%" in text and "≈" in text  # key SLI, coverage, estimate
    # the hostile model's rule fires at the server's own (wall-clock) evaluation
    hostile = tab.page.locator("#models tbody tr").filter(has_text=XSS_RULE).inner_text()
    assert "firing" in hostile
    # the volume sparkline: 2 hours at the automatic 1-minute step, and the total
    spark = churn.locator(".spark")
    points = spark.evaluate("el => el.data[0].y")
    assert len(points) == 120
    expected = api(server, f"/models/churn/versions/*/metrics?metrics=count&{WINDOW}")["rows"][0]
    assert sum(points) == expected["n"] == 1200
    assert f"{expected['n']:,}" in text
    tab.shot("overview", docs=True)


def test_model_page_charts_have_one_point_per_window(tab: Tab, server: Server) -> None:
    tab.open(CHURN)
    assert tab.points("chart-volume") == [120, 120]  # 2 h at 1 minute: predictions, labeled
    assert tab.points("chart-latency") == [120, 120, 120]
    volume = tab.trace("chart-volume")
    metrics = api(server, f"/models/churn/versions/*/metrics?metrics=count&step=1m&{WINDOW}")
    assert volume["y"] == [r["n"] for r in metrics["rows"]]
    # the drift heatmap: every column x 24 five-minute windows, monthly_charges drifted late
    heat = tab.page.evaluate("document.getElementById('chart-drift').data[0]")
    assert len(heat["x"]) == 24
    assert "monthly_charges" in heat["y"]
    row = heat["z"][heat["y"].index("monthly_charges")]
    assert max(v for v in row[-6:] if v is not None) > 1 > max(v for v in row[:6] if v is not None)
    # realised and estimated performance, and label coverage on its own axis
    names = tab.page.evaluate("document.getElementById('chart-sli').data.map(t => t.name)")
    assert {"accuracy", "accuracy (estimated)", "label coverage"} <= set(names)
    assert tab.points("chart-quality")[0] == 24
    assert tab.page.locator("#features tbody tr").count() == 8  # 6 features, score, label
    assert "drifted" in tab.page.locator("#features").inner_text()
    tab.shot("model", docs=True)


def test_range_step_segment_and_version_change_the_data_and_the_url(
    tab: Tab, server: Server
) -> None:
    tab.open(CHURN)
    loads = tab.loads
    before = sum(tab.trace("chart-volume")["y"])
    # a segment typed in the form (keyboard: type, then Enter submits)
    tab.page.fill("#segment", "plan=pro")
    tab.page.press("#segment", "Enter")
    tab.wait(loads=loads + 1)
    assert "segment=plan%3Dpro" in tab.page.url
    pro = sum(tab.trace("chart-volume")["y"])
    expected = api(
        server, f"/models/churn/versions/*/metrics?metrics=count&segment=plan%3Dpro&{WINDOW}"
    )
    assert pro == expected["rows"][0]["n"] and 0 < pro < before
    # a shorter range: 1 hour at 1 minute
    tab.page.select_option("#range", "1h")
    tab.wait(loads=loads + 2)
    assert "range=1h" in tab.page.url
    assert tab.points("chart-volume") == [60, 60]
    # a coarser step
    tab.page.select_option("#step", "5m")
    tab.wait(loads=loads + 3)
    assert tab.points("chart-volume") == [12, 12]
    # one version
    tab.page.select_option("#version", "v1")
    tab.wait(loads=loads + 4)
    assert "version=v1" in tab.page.url
    # the URL carries the state: reloading shows the same
    tab.page.reload()
    tab.wait()
    assert tab.page.input_value("#segment") == "plan=pro"
    assert tab.page.input_value("#range") == "1h"
    assert tab.points("chart-volume") == [12, 12]
    # back to the previous state
    tab.page.go_back()
    tab.wait()
    assert tab.page.input_value("#version") == "*"


def test_end_latest_finds_the_data(tab: Tab) -> None:
    tab.open("/models/churn?end=latest&range=2h")
    assert sum(tab.trace("chart-volume")["y"]) == 1200
    assert tab.page.locator("#empty-note").is_hidden()


def test_empty_range_offers_the_latest_data(tab: Tab) -> None:
    tab.open("/models/churn?range=1h")  # ending now: the demo's data is in the past
    assert tab.page.locator("#empty-note").is_visible()
    loads = tab.loads
    tab.page.click("#jump-latest")
    tab.wait(loads=loads + 1)
    assert "end=latest" in tab.page.url
    assert sum(tab.trace("chart-volume")["y"]) > 0


def test_feature_page(tab: Tab) -> None:
    tab.open(f"/models/churn/features?column=monthly_charges&{DEMO_RANGE}")
    assert tab.page.locator("h1").inner_text().endswith("monthly_charges")
    assert tab.points("chart-distribution")[1:] == [120, 120, 120, 120]  # mean, p50, min, max
    drift = tab.trace("chart-feature-drift")
    assert len(drift["x"]) == 24
    verdicts = tab.page.evaluate("document.getElementById('chart-feature-drift').data[0].text")
    assert "drifted" in verdicts[-1] and "drifted" not in verdicts[0]  # drift from 01:00
    assert "drifted" in tab.page.locator("#feature-drift").inner_text()
    tab.shot("feature", docs=True)
    # a categorical feature, reached from the model page's table
    tab.open(CHURN)
    tab.page.click("#features >> text=plan")
    tab.wait(loads=1)
    assert "column=plan" in tab.page.url and "range=2h" in tab.page.url
    assert "basic" in tab.page.locator("#feature-summary").inner_text()


def test_fired_alert_incident_and_root_cause(tab: Tab) -> None:
    tab.open("/alerts")
    # the demo's drift alert fired at 01:30 (the server, evaluating at wall-clock time on
    # the demo's old data, has resolved it since)
    row = tab.page.locator("#alerts tbody tr").filter(has_text="churn-monthly_charges-drift")
    assert "2026-01-01 01:30" in row.first.inner_text()
    loads = tab.loads
    tab.page.select_option("#alert-state", "firing")
    tab.wait(loads=loads + 1)
    firing = tab.page.locator("#alerts").inner_text()
    assert XSS_RULE in firing and "resolved" not in firing.split("Incident", 1)[1]
    assert "state=firing" in tab.page.url
    tab.shot("alerts", docs=True)
    tab.page.locator("#incidents a", has_text="#1").click()
    tab.wait()
    assert tab.page.url.split("?")[0].endswith("/incidents/1")
    assert "churn-monthly_charges-drift" in tab.page.locator("#incident-alerts").inner_text()
    assert tab.page.locator("#timeline tbody tr").count() >= 2
    cause = tab.page.locator("#root-cause").inner_text()
    assert "monthly_charges" in cause, cause
    tab.shot("incident", docs=True)


def test_rows_and_quarantine_explorer(tab: Tab) -> None:
    tab.open(f"/models/churn/rows?{DEMO_RANGE}")
    assert tab.page.locator("#rows tbody tr").count() == 100
    loads = tab.loads
    tab.page.fill("#rows-where", "plan=enterprise")
    tab.page.select_option("#rows-limit", "50")
    tab.page.press("#rows-where", "Enter")
    tab.wait(loads=loads + 1)
    cells = tab.page.locator("#rows tbody tr").all_inner_texts()
    assert 0 < len(cells) <= 50 and all("enterprise" in c for c in cells)
    tab.open(f"/models/{quote(XSS_MODEL, safe='')}/rows?{DEMO_RANGE}")
    quarantined = tab.page.locator("#quarantine").inner_text()
    assert "<b>q1</b>" in quarantined and tab.page.locator("#quarantine tbody tr").count() == 3
    tab.shot("rows")


def test_hostile_names_are_shown_as_text_and_never_run(tab: Tab, server: Server) -> None:
    model = quote(XSS_MODEL, safe="")
    pages = [
        f"/?{DEMO_RANGE}",
        f"/models/{model}?{DEMO_RANGE}",
        f"/models/{model}?{DEMO_RANGE}&version={quote(XSS_VERSION, safe='')}"
        f"&segment={quote(XSS_SEGMENT + '=' + XSS_SEGMENT_VALUE, safe='')}",
        *(
            f"/models/{model}/features?column={quote(c, safe='')}&{DEMO_RANGE}"
            for c in XSS_FEATURES
        ),
        f"/models/{model}/features?column={quote(XSS_SEGMENT, safe='')}&{DEMO_RANGE}",
        f"/models/{model}/rows?{DEMO_RANGE}",
        "/alerts",
        "/incidents/2",
    ]
    for path in pages:
        tab.open(path)
        assert tab.xss() is None, path
        assert tab.page.locator("img[src=x], script:not([src])").count() == 0, path
    # the names are there, as text
    tab.open(f"/models/{model}?{DEMO_RANGE}")
    assert tab.page.locator("h1").inner_text().endswith(XSS_MODEL)
    features = tab.page.locator("#features").inner_text()
    assert all(name in features for name in XSS_FEATURES)
    heat = tab.page.evaluate("document.getElementById('chart-drift').data[0].y")
    assert len(heat) == 5  # escaped for plotly: no tag survives in a label
    assert all("<" not in label for label in heat)
    tab.open("/alerts")
    assert XSS_RULE in tab.page.locator("#alerts").inner_text()
    assert "<script>window.__xss='summary'</script>" in tab.page.locator("#alerts").inner_text()
    assert tab.xss() is None
    response = tab.page.request.get(f"{server.url}/models/{model}")
    csp = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert XSS_MODEL not in response.text()


def test_keyboard_and_labels(tab: Tab, server: Server) -> None:
    tab.open(CHURN)
    tab.page.keyboard.press("Tab")
    assert tab.page.evaluate("document.activeElement.className") == "skip"
    tab.page.keyboard.press("Enter")
    assert tab.page.evaluate("document.activeElement.id") == "main"
    # every control has an accessible name, every chart a role and a label
    unlabeled = tab.page.evaluate(
        "Array.from(document.querySelectorAll('input, select, button')).filter(e => "
        "!(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())"
        ".map(e => e.id)"
    )
    assert unlabeled == []
    charts = tab.page.evaluate(
        "Array.from(document.querySelectorAll('.chart')).map(e => [e.getAttribute('role'), "
        "e.getAttribute('aria-label')])"
    )
    assert charts and all(role == "img" and label for role, label in charts)
    # the range form works from the keyboard alone
    loads = tab.loads
    tab.page.focus("#end")
    tab.page.evaluate("document.activeElement.select()")
    tab.page.keyboard.type("2026-01-01T01:00:00Z")
    assert tab.page.input_value("#end") == "2026-01-01T01:00:00Z"
    tab.page.keyboard.press("Enter")
    tab.wait(loads=loads + 1)
    assert parse_qs(urlsplit(tab.page.url).query)["end"] == ["2026-01-01T01:00:00Z"]
    first_hour = api(
        server,
        "/models/churn/versions/*/metrics?metrics=count"
        "&start=2026-01-01T00:00:00Z&end=2026-01-01T01:00:00Z",
    )["rows"][0]["n"]
    assert sum(tab.trace("chart-volume")["y"]) == first_hour  # the 2 h before 01:00
    # focus is visible: the focused control has an outline
    outline = tab.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


@pytest.mark.parametrize("path", [CHURN, f"/?{DEMO_RANGE}", "/alerts"])
def test_phone_width(tab: Tab, path: str) -> None:
    tab.page.set_viewport_size({"width": 390, "height": 844})
    tab.open(path)
    overflow = tab.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    if path == CHURN:
        width = tab.page.evaluate(
            "document.getElementById('chart-volume').getBoundingClientRect().width"
        )
        assert 300 <= width <= 390
        tab.shot("model-phone", docs=True)
