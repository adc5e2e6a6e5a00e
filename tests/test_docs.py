"""The documentation runs as written and covers every CLI command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlpulse.cli import _COMMANDS

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> str:
    """The file's ``python`` blocks as one script, other lines blanked so line numbers match."""
    text = path.read_text()
    source = ["" for _ in text.splitlines()]
    for match in FENCE.finditer(text):
        first = text.count("\n", 0, match.start(1))
        for offset, line in enumerate(match.group(1).splitlines()):
            source[first + offset] = line
    return "\n".join(source) + "\n"


class TestQuickstart:
    """docs/quickstart.md is one script that runs from top to bottom."""

    def test_runs(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Every Python block of the quickstart, in order, runs without error."""
        path = DOCS / "quickstart.md"
        source = python_blocks(path)
        assert "mlpulse.connect" in source
        exec(compile(source, str(path), "exec"), {"__name__": "quickstart"})
        assert "6000 6000 0" in capsys.readouterr().out


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
