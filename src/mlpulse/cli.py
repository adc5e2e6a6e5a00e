"""The ``mlpulse`` command line.

::

    mlpulse demo [--duration 6h] [--rate 200] [--seed 7] [--db PATH] [--force] [--quiet]
    mlpulse serve [--db PATH] [--host 127.0.0.1] [--port 8765] [--config FILE] ...
    mlpulse keys create|list|revoke [--db PATH] ...
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


# --------------------------------------------------------------------------- wiring

_Add = Callable[[argparse._SubParsersAction], argparse.ArgumentParser]
_Run = Callable[[argparse.Namespace], int]

#: name -> (declare arguments, run). ``serve`` and later commands go here.
_COMMANDS: dict[str, tuple[_Add, _Run]] = {
    "demo": (_add_demo, _run_demo),
    "keys": (_add_keys, _run_keys),
    "serve": (_add_serve, _run_serve),
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
