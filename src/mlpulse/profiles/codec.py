"""Bytes for profile states: msgpack in a versioned envelope.

Examples
--------
>>> import numpy as np
>>> from mlpulse.profiles.numeric import NumericState
>>> s = NumericState()
>>> s.update(np.array([1.0, 2.0]))
>>> decode(encode(s)) == s
True
>>> decode_states(encode_states({"age": s}))["age"] == s
True
"""

from __future__ import annotations

from typing import Any

import msgpack

from mlpulse.errors import ConfigError
from mlpulse.profiles import compact
from mlpulse.profiles.categorical import CategoricalState
from mlpulse.profiles.classification import BinaryState, MulticlassState
from mlpulse.profiles.latency import LatencyState
from mlpulse.profiles.numeric import NumericState
from mlpulse.profiles.regression import RegressionState

FORMAT_VERSION = 1

#: State types whose data layout changed since ``FORMAT_VERSION``, with the version they
#: write now; they still read every older one. 2: MulticlassState holds sparse confusion
#: pairs instead of a dense k x k matrix. Older mlpulse refuses these with "upgrade mlpulse".
TYPE_VERSIONS: dict[str, int] = {"MulticlassState": 2}

STATE_TYPES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        NumericState,
        CategoricalState,
        LatencyState,
        BinaryState,
        MulticlassState,
        RegressionState,
    )
}
"""Registry of serialisable state classes by name."""


def _envelope(state: Any) -> dict[str, Any]:
    name = type(state).__name__
    if STATE_TYPES.get(name) is not type(state):
        raise ConfigError(f"cannot encode {name}: not a registered profile state type")
    return {"v": TYPE_VERSIONS.get(name, FORMAT_VERSION), "type": name, "data": state.to_dict()}


def _open(env: Any) -> Any:
    if not isinstance(env, dict) or "v" not in env or "type" not in env:
        raise ConfigError("not an mlpulse profile state: missing version/type envelope")
    newest = TYPE_VERSIONS.get(env["type"], FORMAT_VERSION)
    if env["v"] not in range(FORMAT_VERSION, newest + 1):
        raise ConfigError(
            f"profile state format version {env['v']!r} is not supported "
            f"(this mlpulse reads version {newest}); upgrade mlpulse"
        )
    cls = STATE_TYPES.get(env["type"])
    if cls is None:
        raise ConfigError(
            f"unknown profile state type {env['type']!r}; known: {', '.join(sorted(STATE_TYPES))}"
        )
    return cls.from_dict(env["data"])


def _unpack(blob: bytes) -> Any:
    return compact.read(blob)


def encode(state: Any) -> bytes:
    """Serialise one state to bytes."""
    return msgpack.packb(_envelope(state), use_bin_type=True)


def decode(blob: bytes) -> Any:
    """Rebuild a state from :func:`encode`'s bytes (or the compact stored form of
    :func:`mlpulse.profiles.compact.pack`)."""
    env = _unpack(blob)
    if isinstance(env, list):
        return compact.from_fields(compact.check_format(env, "profile state"))
    return _open(env)


def encode_states(states: dict[str, Any]) -> bytes:
    """Serialise a dict of column name -> state as one blob."""
    return msgpack.packb(
        {
            "v": FORMAT_VERSION,
            "type": "states",
            "data": {name: _envelope(s) for name, s in states.items()},
        },
        use_bin_type=True,
    )


def decode_states(blob: bytes) -> dict[str, Any]:
    """Rebuild the dict written by :func:`encode_states` (or the compact stored form of
    :func:`mlpulse.profiles.compact.pack_states`)."""
    env = _unpack(blob)
    if isinstance(env, list):
        return compact.states_from(env)
    if not isinstance(env, dict) or env.get("type") != "states":
        raise ConfigError("not an mlpulse column-states blob")
    if env.get("v") != FORMAT_VERSION:
        raise ConfigError(
            f"column-states format version {env.get('v')!r} is not supported "
            f"(this mlpulse reads version {FORMAT_VERSION}); upgrade mlpulse"
        )
    return {name: _open(e) for name, e in env["data"].items()}
