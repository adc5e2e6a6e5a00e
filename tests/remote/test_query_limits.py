"""Over HTTP, a query's window is checked before any work (422 for times outside years
1-9999 or more than 10,000 windows; a year-1-to-9999 window answers like the data's), and
a multiclass model with thousands of classes takes its labels (a real server process)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest


@pytest.fixture
def api(server, model_name):
    """A client of the shared server with a binary model holding 300 labeled rows."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/api/v1/models", json={"name": model_name, "version": "v1",
                                                 "task": "binary", "prediction": "score",
                                                 "label": "y"})
        assert r.status_code == 200, r.text
        rng = np.random.default_rng(3)
        rows = [{"id": f"r{i}", "score": float(rng.uniform()),
                 "timestamp": f"2026-01-05T{i % 24:02d}:{i % 60:02d}:07Z"} for i in range(300)]
        r = client.post(f"/api/v1/models/{model_name}/versions/v1/predictions", json={"rows": rows})
        assert r.json()["stored"] == 300, r.text
        labels = [{"id": f"r{i}", "y": int(rng.integers(0, 2))} for i in range(300)]
        r = client.post(f"/api/v1/models/{model_name}/feedback", json={"rows": labels})
        assert r.json()["matched"] == 300, r.text
        yield client


class TestWindowLimits:
    """Bad windows are a 422 naming the problem; long windows are cheap and exact."""

    @pytest.mark.parametrize("route", ["metrics", "summary"])
    @pytest.mark.parametrize(
        ("start", "end"),
        [("-100000000000h", "now"), ("2026-01-05", "+100000000000h"), ("-999999999999d", "now")],
    )
    def test_out_of_range_times(self, api, model_name, route, start, end):
        r = api.get(f"/api/v1/models/{model_name}/versions/v1/{route}",
                    params={"start": start, "end": end}, timeout=10)
        assert r.status_code == 422, r.text
        assert "out of range" in r.json()["detail"]
        assert "0001-01-01 to 9999-12-31" in r.json()["detail"]

    def test_too_many_windows(self, api, model_name):
        r = api.get(f"/api/v1/models/{model_name}/versions/v1/metrics",
                    params={"start": "0001-01-01", "end": "9999-12-31", "step": "1h"}, timeout=10)
        assert r.status_code == 422, r.text
        assert "at most 10,000" in r.json()["detail"]

    def test_quarantine_listing_with_out_of_range_times(self, api, model_name):
        r = api.get(f"/api/v1/models/{model_name}/quarantine",
                    params={"start": "-100000000000h"}, timeout=10)
        assert r.status_code == 422, r.text

    def test_year_1_to_9999_equals_the_day_of_data(self, api, model_name):
        url = f"/api/v1/models/{model_name}/versions/v1/metrics"
        names = "count,accuracy,roc_auc,log_loss"
        wide = api.get(url, params={"metrics": names, "start": "0001-01-01",
                                    "end": "9999-12-31"}, timeout=10)
        day = api.get(url, params={"metrics": names, "start": "2026-01-05",
                                   "end": "2026-01-06"}, timeout=10)
        assert wide.status_code == day.status_code == 200, (wide.text, day.text)
        [w], [d] = wide.json()["rows"], day.json()["rows"]
        assert w["n"] == d["n"] == 300
        for name in names.split(","):
            assert w[name] == d[name], name


class TestManyClasses:
    """A multiclass model with 4,000 distinct classes in a day takes its labels (was a
    dense 4,000 x 4,000 matrix per bucket: 2.7 GB, then a 500 on every label request)."""

    def test_labels_for_4000_classes(self, server, model_name):
        k = 4_000
        with httpx.Client(base_url=server.url, timeout=120) as client:
            r = client.post("/api/v1/models", json={"name": model_name, "version": "v1",
                                                     "task": "multiclass", "prediction": "pred",
                                                     "label": "y"})
            assert r.status_code == 200, r.text
            classes = [f"c{i:04d}" for i in range(k)]
            rows = [{"id": f"r{i}", "pred": classes[(i * 7) % k],
                     "timestamp": f"2026-01-05T{(i // 600) % 24:02d}:{(i // 10) % 60:02d}:00Z"}
                    for i in range(2 * k)]
            r = client.post(f"/api/v1/models/{model_name}/versions/v1/predictions",
                            json={"rows": rows})
            assert r.status_code == 200 and r.json()["stored"] == 2 * k, r.text
            labels = [{"id": f"r{i}", "y": classes[i % k]} for i in range(2 * k)]
            r = client.post(f"/api/v1/models/{model_name}/feedback", json={"rows": labels})
            assert r.status_code == 200 and r.json()["matched"] == 2 * k, r.text
            r = client.get(f"/api/v1/models/{model_name}/versions/v1/metrics",
                           params={"metrics": "accuracy,f1_macro", "start": "2026-01-05",
                                   "end": "2026-01-06"})
            assert r.status_code == 200, r.text
            [row] = r.json()["rows"]
            expected = sum((i * 7) % k == i % k for i in range(2 * k)) / (2 * k)
            assert row["n_labeled"] == 2 * k and row["accuracy"] == pytest.approx(expected)
