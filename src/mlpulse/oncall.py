"""The on-call and CI commands of the ``mlpulse`` CLI: ``report``, ``check``, ``status``,
``metrics`` and ``drift`` (wired into :data:`mlpulse.cli._COMMANDS`).

Each is an ``add_<name>(sub)`` that declares its arguments and a ``run_<name>(args)`` that
returns the exit status. Heavy imports happen inside the ``run_`` functions, so ``mlpulse
--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from .errors import ConfigError

#: Exit status of ``mlpulse check`` when a condition failed (2: a bad suite or input).
EXIT_FAILED = 1
REPORT_WIDTH = 120


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else REPORT_WIDTH)


def _source_args(parser: argparse.ArgumentParser, *, url: bool) -> None:
    parser.add_argument("--db", help="database file ($MLPULSE_DB, ./mlpulse.duckdb)")
    if url:
        parser.add_argument("--url", help="a running server instead of --db")
        parser.add_argument("--api-key", help="API key for --url ($MLPULSE_API_KEY)")


def _window_args(parser: argparse.ArgumentParser, default_start: str | None = "-24h") -> None:
    parser.add_argument("--start", default=default_start,
                        help="window start: ISO 8601 or relative ('-24h') (default: %(default)s)")
    parser.add_argument("--end", default="now" if default_start else None,
                        help="window end (default: %(default)s)")  # fmt: skip
    parser.add_argument("--segment", help="only this segment, e.g. plan=pro")
    parser.add_argument("--version", help="model version (default: the latest)")


def _file_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("two files (Parquet or CSV) instead of a database")
    group.add_argument("--reference", metavar="REF", help="reference file (training/validation)")
    group.add_argument("--current", metavar="CUR", help="current file (production)")
    group.add_argument("--task", choices=["binary", "multiclass", "regression"],
                       help="the model's task (default: inferred from the prediction and label)")
    group.add_argument("--prediction", help="prediction column (default: prediction, score, ...)")
    group.add_argument("--label", help="label column (default: label, target, y, ...)")
    group.add_argument("--timestamp", help="event-time column of the current file "
                       "(default: timestamp if present; else one window)")
    group.add_argument("--id", help="id column of the current file (default: id if present)")  # fmt: skip


def _db_path(args: argparse.Namespace) -> str:
    path = args.db or os.environ.get("MLPULSE_DB") or "./mlpulse.duckdb"
    if path != ":memory:" and not os.path.exists(path):
        raise ConfigError(f"no database file at {path!r}: check --db (or $MLPULSE_DB)")
    return path


def _files_or_db(args: argparse.Namespace) -> str:
    files = args.reference is not None or args.current is not None
    if files:
        if args.reference is None or args.current is None:
            raise ConfigError("give both --reference and --current")
        if args.db:
            raise ConfigError("give --db or --reference/--current, not both")
        return "files"
    return "db"


def _roles(args: argparse.Namespace) -> dict[str, Any]:
    return {"task": args.task, "prediction": args.prediction, "label": args.label,
            "timestamp": args.timestamp, "id": args.id}  # fmt: skip


# --------------------------------------------------------------------------- report


def add_report(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a model window or of two files",
        description=(
            "Write one HTML file that opens offline (plotly.js inside): a summary of verdicts, "
            "performance over time with label-free estimates, drift with reference vs "
            "current distributions, and data quality. Charts come from profiles (binned "
            "sketches), never raw rows, so the file stays small whatever the data. Either "
            "--db with --model and a window, or --reference and --current files."
        ),
    )
    _source_args(parser, url=False)
    parser.add_argument("--model", help="the model to report on (with --db)")
    _window_args(parser)
    parser.add_argument("--step", default="auto",
                        help="timeline step, e.g. 1h; 'auto' (default) or 'none'")  # fmt: skip
    _file_args(parser)
    parser.add_argument("-o", "--output", metavar="FILE", default="report.html",
                        help="HTML file to write (default: %(default)s)")  # fmt: skip
    return parser


def run_report(args: argparse.Namespace) -> int:
    from .report import Report

    step = None if str(args.step).lower() == "none" else args.step
    if _files_or_db(args) == "files":
        report = Report.compare(args.reference, args.current, step=step, **_roles(args))
    else:
        from .service import Service

        path = _db_path(args)
        service = Service.open(path)
        try:
            model = args.model or _only_model(service)
            report = Report.for_service(service, model, args.version, start=args.start,
                                        end=args.end, step=step, segment=args.segment,
                                        source=os.path.basename(path))  # fmt: skip
        finally:
            service.close()
    target = report.save(args.output)
    s = report.summary
    drift = (
        "drift not computed" if s["dataset_drift"] is None
        else f"{len(s['drifted_columns'])} of {s['columns']} columns drifted"
    )  # fmt: skip
    key = f"{s['key_metric']} {_fmt(s['key_value'])}"
    if not math.isnan(s["key_estimate"]):
        key += f" (estimated {_fmt(s['key_estimate'])})"
    quality = "quality not computed" if s["quality_violations"] is None else (
        f"{s['quality_violations']} quality violations")  # fmt: skip
    size = target.stat().st_size / 1e6
    print(f"wrote {target} ({size:.1f} MB): {s['rows']:,} rows, {key}, {drift}, {quality}")
    return 0


def _fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def _only_model(service: Any) -> str:
    models = service.models()
    if len(models) != 1:
        raise ConfigError(f"which model? pass --model; the database has {len(models)} models"
                          + (f": {', '.join(models[:20])}" if models else ""))  # fmt: skip
    return str(models[0])


# --------------------------------------------------------------------------- check


def add_check(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "check",
        help="CI gate: check a suite of conditions on a model window or two files",
        description=(
            "Check every condition of SUITE (YAML: 'accuracy >= 0.8', 'drift_share < 0.3', "
            "'quality_violations == 0', 'estimate:roc_auc > 0.7', 'drift:age == false', ...) "
            "on a database window (--db) or on two files (--reference/--current, no server). "
            "Prints a table; exits 0 when every condition holds, 1 when one fails, 2 for a "
            "bad suite or input. --junit writes JUnit XML for the CI's test report."
        ),
    )
    parser.add_argument("suite", metavar="SUITE", help="suite file (YAML or JSON)")
    _source_args(parser, url=False)
    parser.add_argument("--model", help="the model (default: the suite's 'model:')")
    _window_args(parser, default_start=None)
    _file_args(parser)
    parser.add_argument("--junit", metavar="OUT.xml", help="also write a JUnit XML report")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def run_check(args: argparse.Namespace) -> int:
    from .gate import junit_xml, parse_suite, run_service

    suite = parse_suite(args.suite)  # a bad suite stops here, before anything is read
    if _files_or_db(args) == "files":
        from .report import compared

        with compared(args.reference, args.current, **_roles(args)) as (service, window):
            name, version, start, end = window
            outcome = run_service(suite, service, name, version, start, end)
    else:
        from .service import Service

        service = Service.open(_db_path(args))
        try:
            outcome = run_service(suite, service, args.model, args.version, args.start, args.end)
        finally:
            service.close()
    if args.junit:
        try:
            with open(args.junit, "w", encoding="utf-8") as handle:
                handle.write(junit_xml(outcome))
        except OSError as exc:
            raise ConfigError(f"cannot write {args.junit!r}: {exc.strerror or exc}") from None
    if args.json:
        print(json.dumps({
            "ok": outcome.ok, "model": outcome.model, "version": outcome.version,
            "start": str(outcome.start), "end": str(outcome.end),
            "conditions": json.loads(outcome.frame.to_json(orient="records")),
        }))  # fmt: skip
    else:
        console = _console()
        frame = outcome.frame.copy()
        frame["result"] = frame["passed"].map({True: "pass", False: "FAIL"})
        console.print(f"{outcome.model} {outcome.version}  {outcome.start} to {outcome.end}")
        _table(console, frame, ["condition", "value", "rows", "result", "note"],
               style_by=("result", {"FAIL": "bold red", "pass": "green"}))  # fmt: skip
        failed = int((~outcome.frame["passed"]).sum())
        console.print(f"{len(frame) - failed} passed, {failed} failed")
    return 0 if outcome.ok else EXIT_FAILED


# --------------------------------------------------------------------------- status


def _connect(args: argparse.Namespace) -> Any:
    from . import connect

    if args.url and args.db:
        raise ConfigError("give --db or --url, not both")
    if args.url:
        key = args.api_key or os.environ.get("MLPULSE_API_KEY")
        return connect(args.url, api_key=key, on_full="drop")
    return connect(_db_path(args))


def add_status(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "status",
        help="one line per model: volume, key metric, label coverage, estimate, drift, alerts",
        description=(
            "For every model over the trailing --window: predictions, the key metric (accuracy "
            "for classifiers, mae for regression) with label coverage, its label-free "
            "estimate, the drifted columns and the firing alerts. Over a database file (--db) "
            "or a running server (--url)."
        ),
    )
    _source_args(parser, url=True)
    parser.add_argument("--window", default="1h", help="trailing window (default: %(default)s)")
    parser.add_argument("--end", default="now",
                        help="end of the window: ISO 8601 or relative (default: %(default)s)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON (one object per model)")
    return parser


STATUS_COLUMNS = ["model", "version", "task", "predictions", "key_metric", "value",
                  "label_coverage", "estimate", "drifted", "firing_alerts", "note"]  # fmt: skip
_KEY = {"binary": "accuracy", "multiclass": "accuracy", "regression": "mae"}


def status_frame(pulse: Any, window: str = "1h", end: Any = "now") -> Any:
    """One row per model (see ``mlpulse status``) from a :class:`~mlpulse.Pulse`."""
    import pandas as pd

    from ._time import from_micros, parse_duration, to_micros
    from .errors import MlpulseError

    hi = to_micros(end)
    end = from_micros(hi)
    start = from_micros(hi - parse_duration(window.lstrip("-")))
    firing = pulse.alerts(state="firing")
    rows = []
    for name in pulse.models():
        model = pulse.model(name)
        spec = model.spec
        key = _KEY[spec.task]
        row: dict[str, Any] = {"model": name, "version": model.version, "task": spec.task,
                               "key_metric": key, "note": ""}  # fmt: skip
        notes = []
        frame = model.metrics(["count", "label_coverage", key], start=start, end=end)
        n = int(frame["n"].iloc[0]) if len(frame) else 0
        row["predictions"] = n
        row["value"] = float(frame[key].iloc[0]) if len(frame) else math.nan
        row["label_coverage"] = float(frame["label_coverage"].iloc[0]) if len(frame) else math.nan
        row["estimate"] = math.nan
        if spec.task == "binary" and n:
            try:
                est = model.estimate([key], start=start, end=end)
                row["estimate"] = float(est[key].iloc[0]) if len(est) else math.nan
            except MlpulseError as exc:
                notes.append(f"estimate: {exc}")
        drifted: list[str] = []
        if n:
            try:
                drifted = list(model.drift(start=start, end=end).drifted_columns)
            except MlpulseError as exc:
                notes.append(f"drift: {exc}")
        row["drifted"] = ", ".join(drifted)
        mine = firing[firing["model"] == name] if len(firing) else firing
        row["firing_alerts"] = ", ".join(sorted(set(mine["rule"].astype(str)))) if len(mine) else ""
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def run_status(args: argparse.Namespace) -> int:
    pulse = _connect(args)
    try:
        frame = status_frame(pulse, args.window, args.end)
    finally:
        pulse.close()
    if args.json:
        print(frame.to_json(orient="records"))
        return 0
    console = _console()
    console.print(f"models over the last {args.window.lstrip('-')}")
    _table(console, frame, STATUS_COLUMNS)
    return 0


# --------------------------------------------------------------------------- metrics, drift


def add_metrics(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "metrics",
        help="print model.metrics() (or model.estimate() with --estimate) as a table",
        description="The frame model.metrics() returns, as a table (or JSON with --json).",
    )
    parser.add_argument("model", metavar="MODEL", help="the model's name")
    parser.add_argument("--metrics", help="comma-separated names (default: label_coverage and "
                        "the task's key metrics, e.g. accuracy,f1,roc_auc)")  # fmt: skip
    _window_args(parser)
    parser.add_argument("--step", help="one row per window of this length, e.g. 1h")
    parser.add_argument("--estimate", action="store_true",
                        help="label-free estimates instead of realised metrics")  # fmt: skip
    _source_args(parser, url=True)
    parser.add_argument("--json", action="store_true", help="print JSON records")
    return parser


def run_metrics(args: argparse.Namespace) -> int:
    from .report.data import KEY_METRICS

    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    pulse = _connect(args)
    try:
        model = pulse.model(args.model, args.version)
        if names is None:
            task = model.spec.task
            names = KEY_METRICS[task] if args.estimate else ["label_coverage", *KEY_METRICS[task]]
        call = model.estimate if args.estimate else model.metrics
        frame = call(names, start=args.start, end=args.end, step=args.step, segment=args.segment)
    finally:
        pulse.close()
    _print_frame(args, frame)
    return 0


def add_drift(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "drift",
        help="print model.drift() per column as a table",
        description=(
            "The drift of a window against the reference (or --against a version), one row "
            "per column (and per window with --step), as a table or JSON."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="the model's name")
    _window_args(parser)
    parser.add_argument("--step", help="one block per window of this length, e.g. 1h")
    parser.add_argument("--against", default="reference",
                        help="'reference' (default) or a version name")  # fmt: skip
    parser.add_argument("--mode", choices=["sketch", "exact"], default="sketch")
    _source_args(parser, url=True)
    parser.add_argument("--json", action="store_true", help="print JSON records")
    return parser


def run_drift(args: argparse.Namespace) -> int:
    pulse = _connect(args)
    try:
        model = pulse.model(args.model, args.version)
        report = model.drift(start=args.start, end=args.end, step=args.step,
                             against=args.against, mode=args.mode, segment=args.segment)  # fmt: skip
    finally:
        pulse.close()
    frame = report.to_pandas()
    if not args.json:
        verdict = "dataset drift" if report.dataset_drift else "no dataset drift"
        drifted = ", ".join(report.drifted_columns) or "none"
        _console().print(f"{args.model}: {verdict}; drifted: {drifted}")
    _print_frame(args, frame, style_by=("drifted", {"True": "bold red"}))
    return 0


def _print_frame(args: argparse.Namespace, frame: Any,
                 style_by: tuple[str, dict[str, str]] | None = None) -> None:  # fmt: skip
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
        return
    _table(_console(), frame, [str(c) for c in frame.columns], style_by=style_by)


def _table(console: Any, frame: Any, columns: list[str],
           style_by: tuple[str, dict[str, str]] | None = None) -> None:  # fmt: skip
    """A frame's ``columns`` as a rich table (numbers to 4 significant digits)."""
    import pandas as pd
    from rich.table import Table

    if frame.empty:
        console.print("(none)")
        return
    table = Table(show_edge=False, header_style="bold")
    shown = [c for c in columns if c in frame.columns]
    for column in shown:
        table.add_column(column, overflow="fold")

    def cell(value: Any) -> str:
        if value is None or value is pd.NA or value is pd.NaT:
            return ""
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        if isinstance(value, pd.Timestamp):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return str(value)

    from rich.text import Text

    for row in frame[shown].itertuples(index=False):
        texts = [cell(v) for v in row]
        style = None
        if style_by is not None and style_by[0] in shown:
            style = style_by[1].get(texts[shown.index(style_by[0])])
        # Text cells: a name with [brackets] is shown as written, not read as rich markup
        table.add_row(*(Text(t) for t in texts), style=style)
    console.print(table)
