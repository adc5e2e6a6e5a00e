"""Mergeable, serialisable column states (profiles) and their vectorised group builders."""

from mlpulse.profiles.categorical import CATEGORY_CAP, CategoricalState, build_categorical
from mlpulse.profiles.classification import (
    N_SCORE_BINS,
    BinaryState,
    MulticlassState,
    build_binary,
    build_multiclass,
)
from mlpulse.profiles.codec import decode, decode_states, encode, encode_states
from mlpulse.profiles.latency import LatencyState, build_latency
from mlpulse.profiles.numeric import KLL_K, NumericState, build_numeric
from mlpulse.profiles.regression import RegressionState, build_regression

__all__ = [
    "CATEGORY_CAP",
    "KLL_K",
    "N_SCORE_BINS",
    "BinaryState",
    "CategoricalState",
    "LatencyState",
    "MulticlassState",
    "NumericState",
    "RegressionState",
    "build_binary",
    "build_categorical",
    "build_latency",
    "build_multiclass",
    "build_numeric",
    "build_regression",
    "decode",
    "decode_states",
    "encode",
    "encode_states",
]
