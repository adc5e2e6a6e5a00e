"""HTML reports: one self-contained file per model window or per pair of files.

>>> import numpy as np, pandas as pd
>>> from mlpulse.report import Report
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=500), "score": rng.random(500)})
>>> ref["label"] = (rng.random(500) < ref["score"]).astype(int)
>>> cur = ref.assign(x=ref["x"] + 1.0)
>>> report = Report.compare(ref, cur)
>>> report.summary["dataset_drift"], report.summary["drifted_columns"]
(True, ['x'])
>>> report.html.startswith("<!DOCTYPE html>")
True

``Report.for_model(model, start, end)`` reports a stored model (in process: the report reads
the profiles' sketches); ``Report.compare(reference, current)`` two tables or Parquet/CSV
files. ``report.save("report.html")`` writes the file; ``report.summary`` has the verdicts.
See ``docs/reports.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .data import ReportData, collect
from .files import Roles, infer_roles, load, read_table


class Report:
    """A rendered report: ``html`` (the document), ``summary`` (verdicts), ``data``."""

    def __init__(self, data: ReportData) -> None:
        self.data = data
        self._html: str | None = None

    @property
    def summary(self) -> dict[str, Any]:
        """rows, labeled, label_coverage, key_metric, key_value, key_estimate, metrics,
        estimates, dataset_drift, drifted_columns, drift_share, quality_violations, ..."""
        from .render import summary

        return summary(self.data)

    @property
    def html(self) -> str:
        if self._html is None:
            from .render import render

            self._html = render(self.data)
        return self._html

    def save(self, path: str | Path) -> Path:
        """Write the HTML file (UTF-8); returns its path."""
        target = Path(path)
        try:
            target.write_text(self.html, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
        return target

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"Report(model={self.data.model!r}, rows={s['rows']}, "
            f"{s['key_metric']}={s['key_value']:.4g}, dataset_drift={s['dataset_drift']}, "
            f"quality_violations={s['quality_violations']})"
        )

    # -- constructors ------------------------------------------------------------------

    @classmethod
    def for_service(cls, service: Any, name: str, version: str | None = None, *,
                    start: Any = "-24h", end: Any = "now", step: Any = "auto",
                    segment: Any = None, metrics: list[str] | None = None,
                    source: str = "") -> Report:  # fmt: skip
        """A report of a model in a :class:`~mlpulse.service.Service` (its latest version
        by default)."""
        if version is None:
            versions = service.versions(name)
            if not versions:
                raise ConfigError(f"model {name!r} has no version")
            version = versions[-1]
        return cls(collect(service, name, version, start=start, end=end, step=step,
                           segment=segment, metrics=metrics, source=source))  # fmt: skip

    @classmethod
    def for_model(cls, model: Any, start: Any = "-24h", end: Any = "now", *,
                  step: Any = "auto", segment: Any = None,
                  metrics: list[str] | None = None) -> Report:  # fmt: skip
        """A report of ``model`` (a handle of an embedded ``mlpulse.connect(path)``) over
        ``[start, end)``."""
        service = model._pulse.service
        if service is None:
            raise ConfigError(
                f"model {model.name!r}: a report reads the profiles in process; over HTTP, "
                "run `mlpulse report --db FILE` where the database file is (or stop the server)"
            )
        return cls.for_service(service, model.name, model.version, start=start, end=end,
                               step=step, segment=segment, metrics=metrics)  # fmt: skip

    @classmethod
    def compare(cls, reference: Any, current: Any, *, task: str | None = None,
                prediction: str | None = None, label: str | None = None,
                timestamp: str | None = None, id: str | None = None, name: str = "model",
                step: Any = "auto", metrics: list[str] | None = None) -> Report:  # fmt: skip
        """A report of ``current`` against ``reference``: tables (pandas, polars, pyarrow)
        or Parquet/CSV paths. Column roles are inferred unless given (see
        :func:`mlpulse.report.files.infer_roles`)."""
        files = compared(reference, current, task=task, prediction=prediction, label=label,
                         timestamp=timestamp, id=id, name=name, step=step)  # fmt: skip
        with files as (service, window):
            source = _source(reference, current)
            if step == "auto" and not files.timed:
                step = None  # rows without timestamps: one window, no timeline
            return cls.for_service(service, window[0], window[1], start=window[2],
                                   end=window[3], step=step, metrics=metrics,
                                   source=source)  # fmt: skip


class compared:  # noqa: N801 (a context manager used like a function)
    """``with compared(reference, current, ...) as (service, (name, version, start, end))``:
    the two tables loaded into a throwaway in-memory store, closed on exit. ``step``: the
    timeline the caller will ask for (``"auto"`` or None lets a file without timestamps be
    stored as profiles alone, see :mod:`mlpulse.report.files`)."""

    def __init__(self, reference: Any, current: Any, **roles: Any) -> None:
        self._reference, self._current = reference, current
        self._name = roles.pop("name", "model")
        self._step = roles.pop("step", "auto")
        self._roles = roles
        self._service: Any = None
        #: Whether the current table has event times (known once entered).
        self.timed = False

    def __enter__(self) -> tuple[Any, tuple[str, str, Any, Any]]:
        from ..service import Service

        ref, cur = read_table(self._reference), read_table(self._current)
        roles = infer_roles(ref, cur, **self._roles)
        self.timed = roles.timestamp is not None
        self._service = Service.open(":memory:")
        try:
            window = load(self._service, ref, cur, roles, name=self._name, step=self._step)
        except BaseException:
            self._service.close()
            raise
        return self._service, window

    def __exit__(self, *exc: object) -> None:
        self._service.close()


def _source(reference: Any, current: Any) -> str:
    def name(x: Any) -> str:
        return Path(x).name if isinstance(x, str | Path) else type(x).__name__

    return f"{name(current)} against {name(reference)}"


__all__ = ["Report", "ReportData", "Roles", "compared", "infer_roles", "read_table"]
