"""The ``mlpulse`` command line.

::

    mlpulse demo [--duration 6h] [--rate 200] [--seed 7] [--db PATH] [--force] [--quiet]
    mlpulse serve [--db PATH] [--host 127.0.0.1] [--port 8765] [--config FILE] ...
    mlpulse keys create|list|revoke [--db PATH] ...
    mlpulse alerts test|load|list|rules|evaluate [--db PATH | --url URL] ...
    mlpulse grafana-dashboard MODEL [--datasource-uid UID] [--task TASK] [-o FILE]
    mlpulse prometheus-rules MODEL [--metric-below NAME=VALUE] ... [-o FILE]
    mlpulse report (--db DB --model NAME --start S --end E | --reference REF --current CUR) -o FILE
    mlpulse check SUITE [--db DB --model NAME | --reference REF --current CUR] [--junit OUT.xml]
    mlpulse status|metrics MODEL|drift MODEL [--db PATH | --url URL] [--json]
    mlpulse version

Each subcommand is a ``_add_<name>`` function that declares its arguments and a
``_run_<name>`` function that does the work; add new commands (``serve``, ...) to
``_COMMANDS``. Errors from :mod:`mlpulse.errors` print one line to stderr and exit with
status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import oncall  # report, check, status, metrics, drift
from .errors import MlpulseError

EXIT_USAGE = 2  # argparse uses 2 for bad usage; mlpulse errors are the user's input too
REPORT_WIDTH = 120  # columns of the demo's report when stdout is not a terminal


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlpulse")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


# --------------------------------------------------------------------------- demo


def _add_demo(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from .demo import DEFAULT_DB

    parser = sub.add_parser(
        "demo",
        help="simulate a churn model in production and print an hourly report",
        description=(
            "Simulate a binary churn classifier in production: predictions streamed in "
            "event time, labels arriving 5-90 simulated minutes late and out of order (about "
            "3% corrected later), and a drift of monthly_charges half-way through that "
            "costs accuracy. Prints one row per hour: volume, label coverage, accuracy, F1, "
            "ROC AUC, latency quantiles and the drifting feature's mean. The same seed "
            "always prints the same report."
        ),
    )
    parser.add_argument(
        "--duration",
        default="6h",
        help="span of simulated event time, e.g. 90m, 6h, 2d (default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=int,
        default=200,
        help="predictions per simulated minute (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        help=(
            "embedded store to write (default: ./%(default)s); a database an earlier demo "
            "created at this path is DELETED first so reruns are identical; any other file, "
            "and a database another process has open, is refused; ':memory:' keeps nothing"
        ),
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help=(
            "replace the DuckDB database at --db even if the demo did not create it (never "
            "one another process has open, never a file that is not a DuckDB database)"
        ),
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar; print only the report"
    )
    return parser


def _run_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .demo import DemoConfig, run_demo

    # A pipe or a log file gets a fixed width, so the report is the same wherever it goes.
    console = Console(width=None if sys.stdout.isatty() else REPORT_WIDTH)
    config = DemoConfig(
        duration=args.duration,
        rate=args.rate,
        seed=args.seed,
        db=args.db,
        quiet=args.quiet,
        force=args.force,
    )
    run_demo(config, console=console)
    return 0


# --------------------------------------------------------------------------- version


def _add_version(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("version", help="print the installed mlpulse version")


def _run_version(args: argparse.Namespace) -> int:
    print(f"mlpulse {_version()}")
    return 0


# --------------------------------------------------------------------------- serve


def _add_serve(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "serve",
        help="run the HTTP API server over a database file",
        description=(
            "Run the mlpulse server: the HTTP API under /api/v1, /healthz, /readyz, "
            "/openapi.json and /docs. Settings come from flags, MLPULSE_* environment "
            "variables and a TOML config file (flags win). SIGTERM or Ctrl-C stops it "
            "gracefully: in-flight requests finish and the database is checkpointed."
        ),
    )
    parser.add_argument("--config", help="TOML config file with a [server] table ($MLPULSE_CONFIG)")
    parser.add_argument("--db", help="database file the server owns (default: ./mlpulse.duckdb)")
    parser.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: 8765)")
    parser.add_argument("--ssl-certfile", help="TLS certificate (PEM); enables HTTPS")
    parser.add_argument("--ssl-keyfile", help="TLS private key (PEM)")
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        default=None,
        help="listen on a non-loopback address although no API key exists",
    )
    parser.add_argument("--log-level", help="debug, info, warning, error (default: info)")
    parser.add_argument("--log-format", choices=["json", "text"], help="default: json")
    parser.add_argument("--max-body-bytes", type=int, help="largest request body, in bytes")
    parser.add_argument("--max-rows", type=int, help="most rows in one ingest request")
    parser.add_argument("--max-features", type=int, help="most feature columns per row")
    parser.add_argument("--max-string-length", type=int, help="longest string value")
    parser.add_argument("--root-path", help="path prefix when behind a reverse proxy")
    parser.add_argument(
        "--forwarded-allow-ips", help="proxy addresses whose X-Forwarded-* headers are trusted"
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        help="seconds a connection may take to send its request headers (default: 10)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        help="seconds to wait for the next part of a request body; 408 after (default: 30)",
    )
    parser.add_argument(
        "--timeout-keep-alive",
        type=float,
        help="seconds an idle keep-alive connection stays open (default: 5)",
    )
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        help="most open connections; more get 503 (default: 1000)",
    )
    parser.add_argument(
        "--rules",
        metavar="RULES",
        help="alert rules (YAML or JSON file) stored before serving; a bad rule stops the "
        "start. Rules stored earlier stay (same name: replaced)",
    )
    parser.add_argument(
        "--replace-rules",
        action="store_true",
        default=None,
        help="with --rules: drop the other user rules and notifiers first",
    )
    parser.add_argument(
        "--eval-interval",
        metavar="DURATION",
        help="time between evaluations of the stored alert rules (default: 30s)",
    )
    parser.add_argument(
        "--external-url",
        metavar="URL",
        help="the server's address as users reach it, for links in notifications "
        "(default: the listening address)",
    )
    parser.add_argument(
        "--metrics-public",
        action="store_true",
        default=None,
        help="serve GET /metrics without an API key although keys exist",
    )
    parser.add_argument(
        "--metrics-windows",
        metavar="DURATIONS",
        help="trailing windows of the /metrics series, comma-separated (default: 1h,24h)",
    )
    parser.add_argument(
        "--metrics-refresh",
        type=float,
        metavar="SECONDS",
        help="seconds the /metrics figures are served before a scrape has them recomputed "
        "in the background (at least 4x the last computation's time); 0: at every scrape "
        "(default: 10)",
    )
    parser.add_argument(
        "--raw-retention",
        metavar="DURATION",
        help="raw rows older than this leave the database file ('never': kept; default: 30d)",
    )
    parser.add_argument(
        "--raw-archive",
        choices=("parquet", "delete"),
        help="where raw rows past --raw-retention go: Parquet files beside the database "
        "(default) or nowhere",
    )
    parser.add_argument(
        "--minute-retention",
        metavar="DURATION",
        help="minute profiles older than this are deleted, hour buckets remain (default: 7d)",
    )
    parser.add_argument(
        "--hour-retention",
        metavar="DURATION",
        help="hour profiles older than this are deleted, day buckets remain (default: 400d)",
    )
    parser.add_argument(
        "--maintenance-interval",
        metavar="DURATION",
        help="time between two retention and compaction runs (default: 1h)",
    )
    parser.add_argument(
        "--profile-workers",
        type=int,
        metavar="N",
        help="worker processes that profile ingest batches of 2,000 rows or more, so queries "
        "do not wait for ingest; 0: profile in the server process (default: 1)",
    )
    return parser


_SERVE_SETTINGS = (
    "db",
    "host",
    "port",
    "ssl_certfile",
    "ssl_keyfile",
    "allow_unauthenticated",
    "log_level",
    "log_format",
    "max_body_bytes",
    "max_rows",
    "max_features",
    "max_string_length",
    "root_path",
    "forwarded_allow_ips",
    "header_timeout",
    "body_timeout",
    "timeout_keep_alive",
    "limit_concurrency",
    "rules",
    "replace_rules",
    "eval_interval",
    "external_url",
    "metrics_public",
    "metrics_windows",
    "metrics_refresh",
    "raw_retention",
    "raw_archive",
    "minute_retention",
    "hour_retention",
    "maintenance_interval",
    "profile_workers",
)


def _run_serve(args: argparse.Namespace) -> int:
    from .server.config import ServerConfig
    from .server.run import serve

    overrides = {name: getattr(args, name) for name in _SERVE_SETTINGS}
    serve(ServerConfig.load(args.config, overrides=overrides))
    return 0


# --------------------------------------------------------------------------- keys


def _add_keys(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "keys",
        help="create, list and revoke the server's API keys",
        description=(
            "Manage API keys in a database file (stop the server first, or use the admin "
            "endpoints /api/v1/keys). Once any key exists, every /api request needs one."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    create = actions.add_parser("create", help="create a key and print it (only once)")
    create.add_argument("--scope", required=True, choices=["ingest", "read", "admin"])
    create.add_argument("--name", help="a note saying who or what uses the key")
    listing = actions.add_parser("list", help="list keys (ids, scopes, names; no secrets)")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", help="the id shown by `keys list` (or the whole key)")
    for action in (create, listing, revoke):
        action.add_argument(
            "--db", default=None, help="database file ($MLPULSE_DB, ./mlpulse.duckdb)"
        )
    return parser


def _run_keys(args: argparse.Namespace) -> int:
    import os

    from .errors import ConfigError
    from .server.keys import KeyStore
    from .store.database import Store

    path = args.db or os.environ.get("MLPULSE_DB") or "./mlpulse.duckdb"
    if path == ":memory:":
        raise ConfigError("keys need a database file; ':memory:' would forget them at once")
    # a mistyped --db must not silently create an empty database: list and revoke refuse;
    # create makes one (keys are created before a server's first start) and says so
    missing = not os.path.exists(path)
    if missing and args.action != "create":
        raise ConfigError(
            f"no database file at {path!r}: check --db (or $MLPULSE_DB); nothing was created"
        )
    store = Store(path)
    if missing:
        print(
            f"mlpulse keys: created a new database {os.path.abspath(path)!r} (no file was "
            "there); if you meant an existing one, check --db",
            file=sys.stderr,
        )
    try:
        keys = KeyStore(store)
        if args.action == "create":
            print(keys.create(args.scope, args.name))
        elif args.action == "list":
            for key in keys.list():
                info = key.to_dict()
                state = f"revoked {info['revoked_at']}" if key.revoked_at else "active"
                print(
                    f"{key.key_id}  {key.scope:<6}  {info['created_at']}  {state}  {key.name or ''}".rstrip()
                )
        else:
            key = keys.revoke(args.key_id)
            print(f"revoked {key.key_id}")
    finally:
        store.close()
    return 0


# --------------------------------------------------------------------------- alerts


def _add_alerts(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "alerts",
        help="test, load, list and evaluate alert rules",
        description=(
            "Alert rules and alerts of a database file (--db) or a running server (--url). "
            "`alerts test RULES --db DB --at TIME` shows what each rule would say at that "
            "time (replaying the evaluations a live server would have made) without storing "
            "anything. A server owns its database file: while it runs, use --url."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    test = actions.add_parser(
        "test", help="print each rule's value and state at a time; stores nothing"
    )
    test.add_argument("rules", metavar="RULES", help="rules file (YAML or JSON)")
    load = actions.add_parser("load", help="store rules (and notifiers) from a file")
    load.add_argument("rules", metavar="RULES", help="rules file (YAML or JSON)")
    load.add_argument(
        "--replace", action="store_true", help="drop the other user rules and notifiers first"
    )
    listing = actions.add_parser("list", help="list alerts (pending, firing, resolved)")
    listing.add_argument("--state", choices=["pending", "firing", "resolved"])
    listing.add_argument("--model", help="only this model's alerts")
    rules = actions.add_parser("rules", help="list the stored rules")
    evaluate = actions.add_parser(
        "evaluate", help="evaluate every stored rule once and store the result"
    )
    for action in (test, evaluate):
        action.add_argument(
            "--at", help="evaluation time: ISO 8601 or relative ('-2h'); default now"
        )
    for action in (test, load, listing, rules, evaluate):
        action.add_argument(
            "--db", default=None, help="database file ($MLPULSE_DB, ./mlpulse.duckdb)"
        )
        if action is not test:
            action.add_argument("--url", help="a running server instead of --db")
            action.add_argument("--api-key", help="API key for --url ($MLPULSE_API_KEY)")
    return parser


def _alerts_db(args: argparse.Namespace) -> str:
    import os

    from .errors import ConfigError

    path = args.db or os.environ.get("MLPULSE_DB") or "./mlpulse.duckdb"
    if path != ":memory:" and not os.path.exists(path):
        raise ConfigError(f"no database file at {path!r}: check --db (or $MLPULSE_DB)")
    return path


def _run_alerts(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console

    from .errors import ConfigError

    console = Console(width=None if sys.stdout.isatty() else REPORT_WIDTH)
    if args.action == "test":
        return _alerts_test(args, console)
    if args.url and args.db:
        raise ConfigError("give --db or --url, not both")
    from . import connect

    if args.url:
        key = args.api_key or os.environ.get("MLPULSE_API_KEY")
        pulse = connect(args.url, api_key=key, on_full="drop")
    else:
        pulse = connect(_alerts_db(args))
    try:
        if args.action == "load":
            names = pulse.rules.load(args.rules, replace=args.replace)
            console.print(f"stored {len(names)} rules: {', '.join(names) or '-'}")
        elif args.action == "rules":
            frame = pulse.rules.list()
            _table(console, frame, ["name", "model", "metric", "op", "threshold", "baseline",
                                    "window", "for", "min_rows", "source", "enabled"])  # fmt: skip
        elif args.action == "list":
            frame = pulse.alerts(state=args.state, model=args.model)
            _table(console, frame, ["alert_id", "rule", "model", "state", "value", "threshold",
                                    "started_at", "fired_at", "resolved_at", "incident"])  # fmt: skip
        else:
            frame = pulse.evaluate(args.at)
            _table(console, frame, EVALUATION_TABLE)
    finally:
        pulse.close()
    return 0


EVALUATION_TABLE = ["rule", "model", "version", "metric", "value", "op", "threshold", "rows",
                    "state", "started_at", "note"]  # fmt: skip


def _alerts_test(args: argparse.Namespace, console: object) -> int:
    from .alerts.evaluator import evaluate
    from .alerts.rules import parse_rules
    from .service import Service

    rules = parse_rules(args.rules).rules  # before opening anything: a bad file says so
    service = Service.open(_alerts_db(args))
    try:
        for rule in rules:
            if rule.model != "*":
                service._check_rule_model(rule)
        frame = evaluate(service, args.at, rules=rules, persist=False)
    finally:
        service.close()
    _table(console, frame, EVALUATION_TABLE)
    return 0


_STATE_STYLE = {"firing": "bold red", "pending": "yellow", "resolved": "green", "inactive": "dim"}


def _table(console: object, frame: object, columns: list[str]) -> None:
    """Print a frame's ``columns`` as a table, alert states coloured (``oncall._table``)."""
    oncall._table(console, frame, columns, style_by=("state", _STATE_STYLE))


# --------------------------------------------------------------------------- exports


def _write_text(text: str, output: str | None) -> None:
    """Print ``text``, or write it to the file ``output`` (UTF-8)."""
    from .errors import ConfigError

    if output is None or output == "-":
        sys.stdout.write(text)
        return
    try:
        with open(output, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {output!r}: {exc.strerror or exc}") from None


def _add_grafana_dashboard(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "grafana-dashboard",
        help="print a Grafana dashboard JSON for a model over the /metrics series",
        description=(
            "Print a Grafana dashboard (JSON, import it or provision it) for one model: "
            "prediction volume, label coverage, key metrics realised and estimated, latency "
            "quantiles, drift, data-quality violations and firing alerts, over the series "
            "mlpulse serves at /metrics. Choose the Prometheus data source in the dashboard."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="the model's name, exactly as registered")
    parser.add_argument(
        "--datasource-uid", help="uid of the Prometheus data source to preselect (default: none)"
    )
    parser.add_argument(
        "--task",
        choices=["binary", "multiclass", "regression"],
        help="the model's task: one panel per key metric (default: one panel for any task)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    return parser


def _run_grafana_dashboard(args: argparse.Namespace) -> int:
    from .export.grafana import dashboard_json

    text = dashboard_json(args.model, datasource_uid=args.datasource_uid, task=args.task)
    _write_text(text, args.output)
    return 0


def _threshold(text: str) -> tuple[str, float]:
    """``NAME=VALUE`` of ``--metric-below`` / ``--metric-above``."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE such as accuracy=0.9, got {text!r}"
        ) from None


def _add_prometheus_rules(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "prometheus-rules",
        help="write a Prometheus rule file (recording and alerting rules) for a model",
        description=(
            "Write a Prometheus rule file for one model over the series mlpulse serves at "
            "/metrics: recording rules (prediction and label rates, drifting columns, quality "
            "violations) and alerts (a metric below or above a threshold, its label-free "
            "estimate likewise, drift detected, quality violations, predictions stopping, the "
            "model missing from /metrics, p99 latency). Check it with `promtool check rules`."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="the model's name, exactly as registered")
    parser.add_argument(
        "--metric-below",
        action="append",
        type=_threshold,
        metavar="NAME=VALUE",
        help="alert when a built-in metric falls below VALUE (repeatable; default: accuracy=0.9 "
        "when no --metric-below or --metric-above is given)",
    )
    parser.add_argument(
        "--metric-above",
        action="append",
        type=_threshold,
        metavar="NAME=VALUE",
        help="alert when a built-in metric rises above VALUE (repeatable), e.g. rmse=3.5",
    )
    parser.add_argument(
        "--window",
        default="1h",
        help="the mlpulse_metric window the metric alerts watch (default: %(default)s)",
    )
    parser.add_argument(
        "--for",
        dest="hold",
        default="15m",
        metavar="DURATION",
        help="how long a condition holds before its alert fires (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-p99-above",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="alert when p99 latency exceeds this (default: %(default)s)",
    )
    parser.add_argument(
        "--quality-violations-above",
        type=float,
        default=0,
        metavar="N",
        help="alert when a column breaks a quality rule more than N times (default: %(default)s)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    return parser


def _run_prometheus_rules(args: argparse.Namespace) -> int:
    from .export.prometheus_rules import rule_file_yaml

    text = rule_file_yaml(
        args.model,
        below=dict(args.metric_below) if args.metric_below else None,
        above=dict(args.metric_above) if args.metric_above else None,
        window=args.window,
        for_=args.hold,
        latency_p99_above=args.latency_p99_above,
        quality_violations_above=args.quality_violations_above,
    )
    _write_text(text, args.output)
    return 0


# --------------------------------------------------------------------------- wiring

_Add = Callable[[argparse._SubParsersAction], argparse.ArgumentParser]
_Run = Callable[[argparse.Namespace], int]

#: name -> (declare arguments, run). ``serve`` and later commands go here.
_COMMANDS: dict[str, tuple[_Add, _Run]] = {
    "alerts": (_add_alerts, _run_alerts),
    "check": (oncall.add_check, oncall.run_check),
    "demo": (_add_demo, _run_demo),
    "drift": (oncall.add_drift, oncall.run_drift),
    "grafana-dashboard": (_add_grafana_dashboard, _run_grafana_dashboard),
    "keys": (_add_keys, _run_keys),
    "metrics": (oncall.add_metrics, oncall.run_metrics),
    "prometheus-rules": (_add_prometheus_rules, _run_prometheus_rules),
    "report": (oncall.add_report, oncall.run_report),
    "serve": (_add_serve, _run_serve),
    "status": (oncall.add_status, oncall.run_status),
    "version": (_add_version, _run_version),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="mlpulse",
        description="mlpulse: observability for machine-learning systems in production.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"mlpulse {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (add, run) in _COMMANDS.items():
        add(sub).set_defaults(_run=run, _name=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlpulse`` script; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except MlpulseError as exc:
        print(f"mlpulse {args._name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"mlpulse {args._name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
