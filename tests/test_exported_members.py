"""The public surface of ``mlpulse`` is exactly its sorted ``__all__``."""

from __future__ import annotations

import mlpulse

EXPECTED = [
    "AuthenticationError",
    "ConfigError",
    "IngestReport",
    "Model",
    "Observation",
    "Pulse",
    "RemoteError",
    "RemoteModel",
    "RemotePulse",
    "ServerUnavailableError",
    "__version__",
    "connect",
    "errors",
    "metric",
]


class TestExportedMembers:
    """Adding or removing a public name is a deliberate act: this list changes with it."""

    def test_all_is_pinned(self) -> None:
        assert mlpulse.__all__ == EXPECTED

    def test_all_is_sorted_and_resolvable(self) -> None:
        assert mlpulse.__all__ == sorted(mlpulse.__all__)
        for name in mlpulse.__all__:
            assert hasattr(mlpulse, name), name

    def test_contract_entry_points(self) -> None:
        """The names DESIGN.md's API contract calls exist with the contract's shape."""
        pulse = mlpulse.connect(":memory:")
        try:
            model = pulse.model("m", version="v1", task="binary", prediction="score", label="y")
            for method in ("log", "log_batch", "log_feedback", "log_feedback_batch", "observe",
                           "metrics", "drift", "quality", "estimate", "quarantined"):
                assert callable(getattr(model, method)), method
            assert callable(pulse.flush)
        finally:
            pulse.close()
