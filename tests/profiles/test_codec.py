"""Every state type survives encode/decode exactly; bad blobs raise ConfigError."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from mlpulse.errors import ConfigError
from mlpulse.profiles import (
    BinaryState,
    CategoricalState,
    LatencyState,
    MulticlassState,
    NumericState,
    RegressionState,
    decode,
    decode_states,
    encode,
    encode_states,
)
from mlpulse.profiles.codec import STATE_TYPES


def filled() -> list:
    rng = np.random.default_rng(0)
    num = NumericState()
    num.update(np.r_[rng.normal(size=1000), np.nan, np.inf], nulls=np.zeros(1002, bool))
    cat = CategoricalState()
    cat.update(np.array(["a", "b", None], dtype=object))
    big = CategoricalState(cap=5)
    big.update(np.array([f"v{i}" for i in range(20)], dtype=object))
    lat = LatencyState()
    lat.update(rng.exponential(5, 1000))
    binary = BinaryState(0.3)
    binary.update(rng.integers(0, 2, 100), rng.random(100))
    multi = MulticlassState(["z"])
    multi.update(np.array(["a", "b"], dtype=object), np.array(["b", "b"], dtype=object))
    reg = RegressionState()
    reg.update(rng.normal(size=10), rng.normal(size=10))
    return [num, cat, big, lat, binary, multi, reg]


def every_state() -> list:
    return filled() + [cls() for cls in STATE_TYPES.values()]


# Built per test, not held at module level: datasketches objects alive at interpreter exit
# make nanobind print leak warnings.
N_STATES = len(every_state())


class TestCodec:
    """Round trips are exact for filled and empty states of every registered type."""

    @pytest.mark.parametrize("index", range(N_STATES))
    def test_round_trip(self, index):
        state = every_state()[index]
        back = decode(encode(state))
        assert type(back) is type(state) and back == state
        assert decode(encode(back)) == state
        assert back.copy() == state

    def test_every_type_covered(self):
        assert {type(s).__name__ for s in every_state()} == set(STATE_TYPES)

    def test_states_blob(self):
        states = {f"col{i}": s for i, s in enumerate(every_state())}
        back = decode_states(encode_states(states))
        assert list(back) == list(states)
        assert all(back[k] == states[k] for k in states)
        assert decode_states(encode_states({})) == {}

    def test_empty_state_is_merge_identity(self):
        for state in filled():
            merged = state.copy()
            merged.merge(type(state)() if not isinstance(state, BinaryState) else BinaryState(0.3))
            assert merged == state

    @pytest.mark.parametrize(
        "envelope",
        [{"v": 1, "type": "NoSuchState", "data": {}}, {"v": 99, "type": "NumericState", "data": {}},
         {"data": 1}, [1, 2]],
    )
    def test_unknown_type_or_version(self, envelope):
        with pytest.raises(ConfigError):
            decode(msgpack.packb(envelope))

    def test_garbage_and_unregistered(self):
        with pytest.raises(ConfigError):
            decode(b"\xc1")
        with pytest.raises(ConfigError):
            encode(object())
        with pytest.raises(ConfigError):
            decode_states(encode(NumericState()))
