"""DataFrames as Arrow IPC streams, exactly: what the server answers and the HTTP client
reads back, so both transports return the same frame (dtypes included).

Arrow keeps numbers, nullable integers, booleans, text and UTC times as they are (pandas'
metadata restores ``Int64``). Cells holding dicts or lists (an alert's ``labels``, a rule as
a dict, an incident's ``models``) would become Arrow structs, which add the keys other rows
have; they travel as JSON text instead, named in the schema metadata, and come back as the
same dicts and lists.

>>> import pandas as pd
>>> frame = pd.DataFrame({"rule": ["a", "b"], "labels": [{"severity": "page"}, {}],
...                       "incident": pd.array([3, None], dtype="Int64")})
>>> back = frame_from_arrow(frame_to_arrow(frame))
>>> back["labels"].tolist(), str(back["incident"].dtype)
([{'severity': 'page'}, {}], 'Int64')
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa

#: schema metadata key: the columns whose cells are JSON text
JSON_COLUMNS = b"mlpulse.json_columns"


def _nested(series: pd.Series) -> bool:
    if series.dtype != object:
        return False
    return any(isinstance(v, dict | list | tuple) for v in series)


def frame_to_arrow(frame: pd.DataFrame) -> bytes:
    """The frame as one Arrow IPC stream (nested cells as JSON text)."""
    out = frame
    nested = [str(c) for c in frame.columns if _nested(frame[c])]
    if nested:
        out = frame.copy()
        for column in nested:
            out[column] = [None if v is None else json.dumps(v) for v in out[column]]
    table = pa.Table.from_pandas(out, preserve_index=False)
    if nested:
        metadata = dict(table.schema.metadata or {})
        metadata[JSON_COLUMNS] = json.dumps(nested).encode()
        table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def frame_from_arrow(data: bytes) -> pd.DataFrame:
    """The frame :func:`frame_to_arrow` wrote."""
    table = pa.ipc.open_stream(data).read_all()
    nested = json.loads((table.schema.metadata or {}).get(JSON_COLUMNS, b"[]"))
    frame = table.to_pandas()
    for column in nested:
        frame[column] = pd.Series(
            [_load(v) for v in frame[column]], index=frame.index, dtype=object
        )
    return frame


def _load(value: Any) -> Any:
    return None if value is None else json.loads(value)


__all__ = ["JSON_COLUMNS", "frame_from_arrow", "frame_to_arrow"]
