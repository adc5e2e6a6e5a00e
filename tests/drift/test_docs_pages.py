"""docs/drift.md, quality.md, estimation.md and monitors.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> str:
    """The page's python blocks as one script; other lines blanked so line numbers match."""
    text = path.read_text()
    source = ["" for _ in text.splitlines()]
    for match in FENCE.finditer(text):
        first = text.count("\n", 0, match.start(1))
        for offset, line in enumerate(match.group(1).splitlines()):
            source[first + offset] = line
    return "\n".join(source) + "\n"


@pytest.mark.parametrize("page", ["drift.md", "quality.md", "estimation.md", "monitors.md"])
def test_page_runs(page: str) -> None:
    """Every Python block of the page, in order, runs without error."""
    path = DOCS / page
    exec(compile(python_blocks(path), str(path), "exec"), {"__name__": page})


def test_auto_rule_documented() -> None:
    """The auto-selection table names every method the rule can pick."""
    text = (DOCS / "drift.md").read_text()
    for name in ("ks", "wasserstein", "fisher", "ztest", "chi2", "jensenshannon"):
        assert f"| `{name}` |" in text
