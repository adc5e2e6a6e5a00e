"""Data flows down: the package's subpackages import each other without cycles, the server
imports nothing from the client, and SQL stays out of the client."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "mlpulse"


def unit(path: Path) -> str:
    """The subpackage (or top-level module) a file belongs to: 'store', 'schema', ..."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0] if parts[0] != "__init__" else "mlpulse"


def imported_units(path: Path) -> set[str]:
    """Units a module imports (relative and absolute imports of mlpulse), at any depth."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(SRC).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
                names = [target + [a.name] for a in node.names] if not target else [target]
            elif node.module and node.module.split(".")[0] == "mlpulse":
                names = [node.module.split(".")[1:]]
            else:
                continue
            for name in names:
                if name:
                    found.add(name[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "mlpulse" and len(parts) > 1:
                    found.add(parts[1])
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        source = unit(path)
        if source == "mlpulse":
            continue  # the package's __init__ re-exports the public API
        for target in imported_units(path):
            is_unit = (SRC / target).is_dir() or (SRC / f"{target}.py").exists()
            if is_unit and target != source:
                edges[source].add(target)
    return edges


class TestLayers:
    """The package's units depend on each other in one direction."""

    def test_no_import_cycles(self) -> None:
        edges = graph()
        seen: dict[str, int] = {}

        def visit(node: str, trail: list[str]) -> None:
            if seen.get(node) == 1:
                raise AssertionError(f"import cycle: {' -> '.join([*trail, node])}")
            if seen.get(node) == 2:
                return
            seen[node] = 1
            for nxt in sorted(edges.get(node, ())):
                visit(nxt, [*trail, node])
            seen[node] = 2

        for node in sorted(edges):
            visit(node, [])

    @pytest.mark.parametrize(
        "low,high",
        [
            ("store", "engine"),
            ("profiles", "store"),
            ("profiles", "engine"),
            ("engine", "client"),
            ("engine", "server"),
            ("server", "client"),
            ("store", "client"),
        ],
    )
    def test_direction(self, low: str, high: str) -> None:
        """``low`` never imports ``high``."""
        assert high not in graph().get(low, set())

    def test_no_sql_in_client(self) -> None:
        sql = re.compile(
            r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP)\b[^\n]*\b(FROM|INTO|TABLE|SET)\b"
        )
        offenders = [
            f"{p.name}:{n}"
            for p in (SRC / "client").rglob("*.py")
            for n, line in enumerate(p.read_text().splitlines(), 1)
            if sql.search(line)
        ]
        assert not offenders, offenders

    def test_checker_sees_an_edge(self) -> None:
        """The graph is real: the engine imports the store."""
        assert "store" in graph()["engine"]
