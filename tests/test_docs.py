"""The documentation runs as written and covers the public API and every CLI command.

Every ```python block of every ``docs/*.md`` page runs: each page is one script, its blocks in
order, in a fresh temporary working directory. A block right after a ``<!-- no-test -->``
comment is skipped (for pages that describe servers and other running processes).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import mlpulse
from mlpulse.cli import _COMMANDS

DOCS = Path(__file__).resolve().parent.parent / "docs"
README = DOCS.parent / "README.md"
#: The docs pages and the README, whose quickstart must run as pasted.
PAGES = [*sorted(DOCS.glob("*.md")), README]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
NO_TEST = "<!-- no-test -->"


def skipped(text: str, fence_start: int) -> bool:
    """Whether the last non-blank line before a fence is the ``no-test`` marker."""
    before = text[:fence_start].rstrip().splitlines()
    return bool(before) and before[-1].strip() == NO_TEST


def python_blocks(path: Path) -> str:
    """The page's ``python`` blocks as one script, other lines blanked so line numbers match."""
    text = path.read_text()
    source = ["" for _ in text.splitlines()]
    for match in FENCE.finditer(text):
        if skipped(text, match.start()):
            continue
        first = text.count("\n", 0, match.start(1))
        for offset, line in enumerate(match.group(1).splitlines()):
            source[first + offset] = line
    return "\n".join(source) + "\n"


def _demo_database() -> None:
    """cli.md explores the store that ``mlpulse demo`` writes: make a small one."""
    from rich.console import Console

    from mlpulse.demo import DemoConfig, run_demo

    config = DemoConfig(duration="1h", rate=20, quiet=True, db="mlpulse-demo.duckdb")
    run_demo(config, console=Console(file=io.StringIO()))


def _spark_or_skip() -> None:
    """spark.md runs a local Spark: skipped where pyspark or Java is missing."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("spark.md needs pyspark (pip install 'mlpulse[spark]')")
    if shutil.which("java") is None:
        pytest.skip("spark.md needs Java 17 for a local Spark")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")


#: Per page: setup run in the temporary directory first, and text its output must contain.
SETUP: dict[str, Callable[[], None]] = {"cli.md": _demo_database, "spark.md": _spark_or_skip}
EXPECT: dict[str, list[str]] = {
    "README.md": ["5000 5000 0", "label_coverage"],
    "quickstart.md": ["6000 6000 0"],
    "spark.md": ["2000 2000 1500 0", "1000"],
    "logging.md": [
        "600 600 0",
        "300 300 600",
        "1 0 1",
        "603 603",
        "6 1 5",
        "duplicate id within the batch",
        "binary prediction must be a probability in [0, 1]",
        "city=__other__ 20",
        "* 613",
    ],
    "metrics.md": ["True True True True True True", "3591", "top_decile_precision",
                   "4 True 300 True", "3 300", "['accuracy', 'accuracy_lower', 'accuracy_upper']",
                   "60 AUC 0.882 [0.761, 0.943]", "delong-score 0.95"],
    "reports.md": ["5000 True ['monthly_charges'] 0", "5m 50", "exit status 0", "bar True",
                   "heatmap", "True\n", "True ['accuracy (estimated)', 'roc_auc (estimated)']"],
    "drift.md": ["1 column changed", "Timestamp('2026-01-07 10:00:00+0000', tz='UTC')"],
    "quality.md": ["2026-01-08 15:00:00+00:00", "15 clean hours"],
    "profiles.md": ["9975 25 9975 25", "True 0.0133", "20000 True", "True 1000 True True True"],
    "storage.md": ["runs/from-env.duckdb", "StoreLockedError", "runs/restored.duckdb 2 0.5",
                   "14400 True True\nTrue\n9\n", "('model=churn/version=v1/date=2026-01-01/part-"],
    "prometheus.md": ['mlpulse_metric{model="churn",name="accuracy",version="v1",window="1h"} 0.333'],
    "alerts.md": [
        "churn-accuracy-low resolved 05:",
        "churn: churn-accuracy-low resolved ['opened', 'firing', 'resolved', 'closed']",
        "churn-v2:accuracy-vs-reference",
        "1 segment channel=app True",
        "'channel'='app' (",
    ],
    "errors.md": ["unknown metric: UnknownMetricError", "conflict: ModelConflictError"],
    "estimation.md": ["True drift: score (wasser", "True False", "True True"],
    "investigation.md": [
        "top: pro p < 1e-6: True",
        "sum equals the change: True",
        "[{'column': 'plan', 'op': '==', 'value': 'pro'}]",
        "3 set()",
        "column 'score': prediction is not a number",
    ],
}


@pytest.fixture
def clean_metric_registry():
    """Pages may register custom metrics; restore the process-wide registry afterwards."""
    from mlpulse.metrics import custom

    saved = dict(custom._REGISTRY)
    yield
    custom._REGISTRY.clear()
    custom._REGISTRY.update(saved)


class TestPagesRun:
    """Every docs page's Python blocks run, in order, in a fresh working directory."""

    def test_pages_found(self) -> None:
        names = {p.name for p in PAGES}
        assert {"quickstart.md", "cli.md", "logging.md", "metrics.md"} <= names
        assert set(EXPECT) <= names, "EXPECT names a page that does not exist"

    @pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
    def test_runs(
        self,
        path: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        clean_metric_registry: None,
    ) -> None:
        source = python_blocks(path)
        if not source.strip():
            pytest.skip(f"{path.name} has no Python blocks to run")
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("MLPULSE_DB", raising=False)
        if path.name in SETUP:
            SETUP[path.name]()
        exec(compile(source, str(path), "exec"), {"__name__": f"docs.{path.stem}"})
        out = capsys.readouterr().out
        for expected in EXPECT.get(path.name, []):
            assert expected in out, f"{path.name}: {expected!r} not in output:\n{out}"

    def test_no_test_marker_skips_block(self, tmp_path: Path) -> None:
        page = tmp_path / "server.md"
        page.write_text(
            "```python\nx = 1\n```\n\n<!-- no-test -->\n```python\nraise SystemExit\n```\n"
        )
        source = python_blocks(page)
        assert "x = 1" in source
        assert "SystemExit" not in source


class TestCoverage:
    """The docs mention the whole public API."""

    def test_every_public_name_documented(self) -> None:
        text = "\n".join(p.read_text() for p in PAGES)
        missing = [
            name
            for name in mlpulse.__all__
            if not re.search(
                rf"`(?:mlpulse\.)?{re.escape(name)}\b|mlpulse\.{re.escape(name)}\b", text
            )
        ]
        assert not missing, f"public names not mentioned in docs/*.md: {missing}"

    def test_every_builtin_metric_documented(self) -> None:
        from mlpulse.metrics.catalog import COMMON_METRICS, TASK_METRICS

        text = (DOCS / "metrics.md").read_text()
        names = {*COMMON_METRICS, "positive_rate"}
        for metrics in TASK_METRICS.values():
            names.update(metrics)
        missing = sorted(n for n in names if f"`{n}`" not in text)
        assert not missing, f"metrics not documented in docs/metrics.md: {missing}"

    def test_every_error_documented(self) -> None:
        from mlpulse import errors

        text = (DOCS / "errors.md").read_text()
        missing = [name for name in errors.__all__ if f"`{name}`" not in text]
        assert not missing, f"errors not documented in docs/errors.md: {missing}"

    def test_every_store_table_documented(self) -> None:
        from mlpulse.store.migrations import MIGRATIONS

        text = (DOCS / "storage.md").read_text()
        tables = {"schema_migrations"}
        for _number, _name, statements in MIGRATIONS:
            for sql in statements:
                tables.update(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", sql))
        missing = sorted(t for t in tables if f"`{t}`" not in text)
        assert not missing, f"tables not documented in docs/storage.md: {missing}"

    def test_readme_links_every_page(self) -> None:
        readme = (DOCS.parent / "README.md").read_text()
        missing = [p.name for p in PAGES if p != README and f"(docs/{p.name})" not in readme]
        assert not missing, f"README.md does not link: {missing}"


class TestCliDocs:
    """docs/cli.md documents every command and every option of the demo."""

    def test_every_command_documented(self) -> None:
        """Each registered subcommand has a section."""
        text = (DOCS / "cli.md").read_text()
        for name in _COMMANDS:
            assert f"## `mlpulse {name}`" in text

    def test_every_demo_option_documented(self) -> None:
        """Each ``mlpulse demo`` option appears in the options table."""
        from mlpulse.cli import build_parser

        text = (DOCS / "cli.md").read_text()
        parser = build_parser()
        demo = parser._subparsers._group_actions[0].choices["demo"]  # type: ignore[union-attr]
        for action in demo._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}`" in text
