"""User data-quality constraints per model (``quality_constraints``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .database import Store


def save_constraints(
    store: Store, model_id: int, constraints: list[Any], *, replace: bool = False
) -> None:
    """Store constraints (objects with ``column``, ``rule``, ``params``); one of the same
    column and rule replaces the stored one; ``replace`` drops all others first."""
    with store.write() as conn:
        if replace:
            conn.execute("DELETE FROM quality_constraints WHERE model_id = ?", [model_id])
        for c in constraints:
            conn.execute(
                "DELETE FROM quality_constraints WHERE model_id = ? AND col = ? AND rule = ?",
                [model_id, c.column, c.rule],
            )
            conn.execute(
                "INSERT INTO quality_constraints VALUES (?, ?, ?, ?, ?)",
                [
                    model_id,
                    c.column,
                    c.rule,
                    json.dumps(c.params),
                    datetime.now(UTC).replace(tzinfo=None),
                ],
            )


def load_constraints(store: Store, model_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(column, rule, params)`` of the stored constraints, oldest first."""
    rows = store.fetch_all(
        "SELECT col, rule, params FROM quality_constraints WHERE model_id = ? "
        "ORDER BY created_at, col, rule",
        [model_id],
    )
    return [(c, r, json.loads(p)) for c, r, p in rows]


__all__ = ["load_constraints", "save_constraints"]
