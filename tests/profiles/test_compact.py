"""The compact stored layout: exact round trips in every form, smaller than the named
envelope, and blobs of the earlier layout still read (state by state and through a store)."""

from __future__ import annotations

import msgpack
import numpy as np
import pandas as pd
import pytest

import mlpulse
from mlpulse.errors import ConfigError
from mlpulse.profiles import (
    BinaryState,
    CategoricalState,
    LatencyState,
    MulticlassState,
    NumericState,
    RegressionState,
    codec,
    compact,
)
from mlpulse.profiles.bucket import CORE, FEATURES, LABELED, CoreState, decode_part, encode_part


def values(rng: np.random.Generator, n: int) -> np.ndarray:
    kind = rng.integers(0, 6)
    if kind == 0:
        return rng.normal(size=n)
    if kind == 1:
        return rng.integers(-5, 300, n).astype(float)  # integers: packed as ints
    if kind == 2:
        return rng.normal(size=n).astype(np.float32).astype(float)  # float32 exactly
    if kind == 3:
        return np.r_[rng.normal(size=n), -0.0, 0.0, np.nan, np.inf, -np.inf][: max(n, 1)]
    if kind == 4:
        return np.full(n, 1e300)  # x / n sums and squares near the float max
    return rng.choice([0.0, -0.0, 1.5], n)  # signed zeros: min/max bits differ from values'


def legacy_core(core: CoreState) -> bytes:
    """A core part as stored before the compact layout (a map with nested envelopes)."""
    return msgpack.packb(
        {
            "n": core.n,
            "positives": core.positives,
            "prediction": codec.encode(core.prediction) if core.prediction is not None else None,
            "latency": codec.encode(core.latency) if core.latency is not None else None,
            "type_errors": core.type_errors,
            "first_ts": core.first_ts,
            "last_ts": core.last_ts,
        },
        use_bin_type=True,
    )


def legacy_part(part: str, value) -> bytes:
    if part == CORE:
        return legacy_core(value)
    if part == FEATURES:
        return codec.encode_states(value)
    return codec.encode(value)


class TestRoundTrip:
    def test_numeric_every_form_exact(self):
        rng = np.random.default_rng(1)
        forms = set()
        for _ in range(400):
            n = int(rng.choice([0, 1, 2, 3, 50, 199, 200, 201, 1000]))
            parts = []
            for _ in range(int(rng.integers(1, 4))):
                s = NumericState()
                v = values(rng, n)
                s.update(v, nulls=rng.uniform(size=len(v)) < 0.1)
                parts.append(s)
            state = parts[0]
            for other in parts[1:]:
                state.merge(other)
            forms.add(compact.fields(state)[3])
            back = compact.unpack(compact.pack(state))
            assert back == state and back.copy() == state
            assert compact.unpack(compact.pack(back)) == state
            # a decoded state keeps merging like the original (bit for bit while the
            # sketch holds every value; past that KLL compaction flips random coins)
            extra = NumericState()
            extra.update(values(rng, 5))
            back.merge(extra)
            state.merge(extra)
            if not state.kll.is_estimation_mode():
                assert back == state
            else:
                assert back.to_dict()["mean"] == state.to_dict()["mean"]
                assert (back.count, back.m2, back.min, back.max) == (
                    state.count,
                    state.m2,
                    state.min,
                    state.max,
                )
        assert forms >= {0, 1, 2, 4, 5}

    @pytest.mark.parametrize("a, b", [([0.0], [-0.0]), ([-0.0], [0.0]), ([0.0, 1.0], [-0.0])])
    def test_signed_zeros_keep_their_min_and_max(self, a, b):
        state, other = NumericState(), NumericState()
        state.update(np.array(a))
        other.update(np.array(b))
        state.merge(other)  # min/max bits differ from the values' own: stored apart (form 3)
        assert compact.fields(state)[3] == 3
        assert compact.unpack(compact.pack(state)) == state

    def test_other_states_exact(self):
        rng = np.random.default_rng(2)
        for n in (0, 1, 2, 7, 300, 3000):
            lat = LatencyState()
            lat.update(np.abs(values(rng, n)))
            assert compact.unpack(compact.pack(lat)) == lat
            binary = BinaryState(0.3)
            scores = rng.uniform(size=n) if n < 3000 else np.round(rng.uniform(size=n), 3)
            binary.update(rng.integers(0, 2, n), scores)
            assert compact.unpack(compact.pack(binary)) == binary
            wide = BinaryState(0.3)
            wide.update(rng.integers(0, 2, 5000), rng.uniform(size=5000))  # histograms
            wide.merge(binary)
            back = compact.unpack(compact.pack(wide))
            assert back == wide and back.exact is None
            assert np.array_equal(back.pos_hist, wide.pos_hist)
            reg = RegressionState()
            reg.update(rng.normal(size=n), rng.normal(size=n))
            assert compact.unpack(compact.pack(reg)) == reg
        zero = LatencyState()
        zero.update(np.array([0.0]))
        assert compact.unpack(compact.pack(zero)) == zero
        cat = CategoricalState()
        cat.update(np.array(["a", "b", "a", None], dtype=object))
        big = CategoricalState(cap=5)
        big.update(np.array([f"v{i}" for i in range(20)], dtype=object))
        multi = MulticlassState(["z"])
        multi.update(np.array(["a", "b"], dtype=object), np.array(["b", "b"], dtype=object))
        for state in (cat, big, multi, CategoricalState(), MulticlassState(), RegressionState()):
            assert compact.unpack(compact.pack(state)) == state

    def test_parts(self):
        rng = np.random.default_rng(3)
        num = NumericState()
        num.update(rng.normal(size=3))
        lat = LatencyState()
        lat.update(np.array([12.5]))
        for core in (
            CoreState(n=3, positives=1, prediction=num, latency=lat, type_errors={"f": 2},
                      first_ts=1_767_225_600_000_000, last_ts=1_767_225_659_000_000),
            CoreState(),
            CoreState(n=2, first_ts=None, last_ts=None),
        ):  # fmt: skip
            back = decode_part(CORE, encode_part(CORE, core))
            assert (back.n, back.positives, back.type_errors) == (
                core.n,
                core.positives,
                core.type_errors,
            )
            assert (back.first_ts, back.last_ts) == (core.first_ts, core.last_ts)
            assert back.prediction == core.prediction and back.latency == core.latency
        features = {"age": num, "plan": CategoricalState()}
        back = decode_part(FEATURES, encode_part(FEATURES, features))
        assert list(back) == ["age", "plan"] and all(back[k] == features[k] for k in back)
        assert decode_part(FEATURES, encode_part(FEATURES, {})) == {}


class TestSize:
    def test_small_buckets_cost_a_fraction(self):
        """A minute of 1-3 rows and an hour of 20 features over a few rows: the fixed
        overhead is gone (sizes of the named envelope in parentheses)."""
        rng = np.random.default_rng(4)
        for n, core_max, features_max in ((1, 60, 500), (3, 110, 800)):
            num = NumericState()
            num.update(rng.uniform(size=n))
            lat = LatencyState()
            lat.update(rng.gamma(2, 8, n))
            core = CoreState(n=n, positives=1, prediction=num, latency=lat,
                             first_ts=1_767_225_600_000_000, last_ts=1_767_225_659_000_000)  # fmt: skip
            assert len(encode_part(CORE, core)) <= core_max < len(legacy_core(core)) / 3
            features = {}
            for i in range(20):
                features[f"f{i}"] = NumericState()
                features[f"f{i}"].update(rng.normal(size=n))
            packed = len(encode_part(FEATURES, features))
            assert packed <= features_max < len(legacy_part(FEATURES, features)) / 3

    def test_values_narrowed_exactly(self):
        for data, width in (
            (np.array([1.0, -3.0, 100.0]), 1),
            (np.array([1.0, 40_000.0]), 4),
            (np.array([0.5, 0.25]), 4),
            (np.array([0.1, 0.2]), 8),
            (np.array([-0.0, 1.0]), 4),  # -0.0 is no integer
        ):
            code, raw = compact.pack_floats(data)
            assert len(raw) == len(data) * (abs(code) if code > 0 else -code)
            assert len(raw) // len(data) == width
            back = compact.unpack_floats([code, raw])
            assert np.array_equal(back.view(np.int64), data.view(np.int64))


class TestLegacyAndErrors:
    def test_legacy_layout_still_decodes(self):
        rng = np.random.default_rng(5)
        num = NumericState()
        num.update(rng.normal(size=500))
        lat = LatencyState()
        lat.update(rng.gamma(2, 8, 500))
        core = CoreState(n=500, positives=3, prediction=num, latency=lat, first_ts=1, last_ts=9)
        binary = BinaryState()
        binary.update(rng.integers(0, 2, 50), rng.uniform(size=50))
        for part, value in ((CORE, core), (FEATURES, {"x": num}), (LABELED, binary)):
            old = decode_part(part, legacy_part(part, value))
            new = decode_part(part, encode_part(part, value))
            assert encode_part(part, old) == encode_part(part, new)

    @pytest.mark.parametrize(
        "fields, match",
        [
            ([3, 1, 200, 0, 0], "upgrade mlpulse"),
            ([1, 1, 200, 0, 0], "unknown layout version"),
            ([2, 99], "unknown state type"),
            ([2, 1, 200, 3, 9], "unknown form"),
            ([2, 3, 1, 0, 0, 2, 1.0, 1.0, 1.0, [5, [1, b"\x01"]], [1, b""]], "differ in length"),
            ([2, 1, 200, 3, 5, [8, b"\x00" * 7]], "corrupt"),
            (["x"], "layout version"),
        ],
    )
    def test_refused(self, fields, match):
        with pytest.raises(ConfigError, match=match):
            codec.decode(msgpack.packb(fields, use_bin_type=True))
        with pytest.raises(ConfigError):
            CoreState.from_bytes(msgpack.packb(fields, use_bin_type=True))

    def test_store_with_legacy_blobs_answers_the_same(self, tmp_path):
        """A database written before the compact layout (blobs rewritten in the old layout
        here) answers metrics and drift exactly as one written now."""
        rng = np.random.default_rng(6)
        n = 600
        frame = pd.DataFrame({"x": rng.normal(size=n), "score": rng.uniform(size=n)})
        frame["id"] = [f"r{i}" for i in range(n)]
        frame["plan"] = rng.choice(["a", "b"], n)
        frame["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(
            np.sort(rng.uniform(0, 7200, n)), "s"
        )
        path = str(tmp_path / "old.duckdb")
        pulse = mlpulse.connect(path)
        model = pulse.model("m", task="binary", prediction="score", label="y", segments=["plan"])
        model.log_batch(frame, timestamp="ts")
        model.log_feedback_batch({"id": frame["id"], "y": (frame["score"] > 0.4).astype(int)})
        window = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T02:00:00Z"}
        before = model.metrics(["count", "accuracy", "roc_auc"], step="10m", **window)
        store = pulse.service.store
        rows = store.fetch_all(
            "SELECT p.part, b.key, b.blob FROM profiles p JOIN profile_blobs b ON p.key = b.key"
        )
        with store.write() as conn:
            for part, key, blob in rows:
                conn.execute(
                    "UPDATE profile_blobs SET blob = ? WHERE key = ?",
                    [legacy_part(part, decode_part(part, blob)), key],
                )
        pulse.close()
        reopened = mlpulse.connect(path)
        after = reopened.model("m").metrics(["count", "accuracy", "roc_auc"], step="10m", **window)
        pd.testing.assert_frame_equal(before, after)
        reopened.close()
