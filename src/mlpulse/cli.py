"""The ``mlpulse`` command line.

::

    mlpulse demo [--duration 6h] [--rate 200] [--seed 7] [--db PATH] [--quiet]
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
            "3%% corrected later), and a drift of monthly_charges half-way through that "
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
            "embedded store to write (default: ./%(default)s); a previous demo database at "
            "this path is DELETED first so reruns are identical (a file that is not a DuckDB "
            "database is never touched); ':memory:' keeps nothing"
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
        duration=args.duration, rate=args.rate, seed=args.seed, db=args.db, quiet=args.quiet
    )
    run_demo(config, console=console)
    return 0


# --------------------------------------------------------------------------- version


def _add_version(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("version", help="print the installed mlpulse version")


def _run_version(args: argparse.Namespace) -> int:
    print(f"mlpulse {_version()}")
    return 0


# --------------------------------------------------------------------------- wiring

_Add = Callable[[argparse._SubParsersAction], argparse.ArgumentParser]
_Run = Callable[[argparse.Namespace], int]

#: name -> (declare arguments, run). ``serve`` and later commands go here.
_COMMANDS: dict[str, tuple[_Add, _Run]] = {
    "demo": (_add_demo, _run_demo),
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
