"""Label-free performance estimation (CBPE); ``Model.estimate`` is the entry point.

See ``docs/estimation.md``.
"""

from mlpulse.estimation.cbpe import CBPE, METRICS, Estimate

__all__ = ["CBPE", "METRICS", "Estimate"]
