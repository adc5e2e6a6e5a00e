"""Arrow conversions at the boundary: lists of row dicts to Arrow tables.

Rows from JSON bodies, ``log_batch(list_of_dicts)`` and the background batcher rarely all
have the same keys. ``pa.Table.from_pylist`` takes the schema from the first row and drops
every key that row lacks, so the conversion here takes the union of the keys, in first-seen
order, and fills the gaps with nulls.

>>> rows_to_table([{"id": "a", "x": 1}, {"id": "b", "ts": "2026-01-01", "x": 2}]).to_pydict()
{'id': ['a', 'b'], 'x': [1, 2], 'ts': [None, '2026-01-01']}

A column whose values do not share one type (numbers and text, say) becomes text, so one bad
value cannot sink the batch; validation then nulls it and counts a type violation:

>>> rows_to_table([{"x": 1}, {"x": "oops"}]).column("x").to_pylist()
['1', 'oops']
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import pyarrow as pa

from .errors import SchemaError

_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError)


def rows_to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """A table with one column per key found in any row (first-seen order), nulls where a
    row lacks the key. Strings with lone surrogates raise ``UnicodeEncodeError``."""
    if not rows:
        return pa.table({})
    first = rows[0]
    # C-level union of the keys: when every key is already in the first row (the common
    # case), Arrow's own conversion is right and fastest.
    if first and len(set().union(*rows)) == len(first):
        try:
            return pa.Table.from_pylist(rows)
        except _CONVERSION_ERRORS:
            pass
    else:
        try:
            # Arrow infers a struct over all rows, with its fields in first-seen order
            return pa.Table.from_struct_array(pa.array(rows))
        except _CONVERSION_ERRORS:
            pass
    return _column_wise(rows)


def _column_wise(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """The careful conversion: a column of mixed types becomes text."""
    names = list(dict.fromkeys(chain.from_iterable(rows)))
    for name in names:
        if not isinstance(name, str):
            raise SchemaError(f"column names must be strings, got {name!r} ({type(name).__name__})")
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values)
        except _CONVERSION_ERRORS:
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(columns)


__all__ = ["rows_to_table"]
