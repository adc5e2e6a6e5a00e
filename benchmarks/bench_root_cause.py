"""Root cause ranking on planted-cause incidents (issue 11 part 8).

Each scenario (see ``benchmarks/_planted.py``) trains a model on half of one of
scikit-learn's bundled datasets (breast_cancer, wine, digits, diabetes), serves the other
half for nine hours, plants one cause at a random time after six hours (a corrupted
feature, a degraded segment, a worse version, a latency regression, a traffic drop), and
evaluates the team's rules every 10 minutes with ``pulse.evaluate(at=...)`` until an
incident opens. ``pulse.incident(id).root_cause`` is then read, and the planted cause
looked up in it: hit@1 when it ranks first, hit@3 when in the first three. Scenarios
cycle through the causes and datasets with a fresh seed each.

Then incidents with nothing planted (a rule that always fires opens them on healthy
traffic, cycling through the datasets): the root cause should list nothing.

Baseline, in the same run: the same candidates ranked by their p-value (-log p) instead of
their effect size, i.e. without the calibration that makes scores comparable across kinds.

    python benchmarks/bench_root_cause.py            # 40 scenarios + 12 null, ~15 min on 2 cores
    python benchmarks/bench_root_cause.py --quick    # 10 scenarios + 2 null
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
from _common import emit, target  # noqa: E402
from _planted import CAUSES, DATASETS, Scenario, build, run  # noqa: E402

import mlpulse  # noqa: E402
from mlpulse.alerts import rootcause  # noqa: E402


def baseline_rank(pulse: mlpulse.Pulse, scenario: Scenario) -> int | None:
    """Rank of the planted cause when the significant candidates are ordered by p-value."""
    found = rootcause.significant(rootcause.candidates(pulse.service, scenario.incident))
    found.sort(key=lambda c: (c.p_value, -c.effect))
    for rank, c in enumerate(found, 1):
        if c.kind in scenario.truth["kinds"] and c.subject == scenario.truth["subject"]:
            return rank
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--scenarios", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--null", type=int, default=None, help="incidents with nothing planted")
    args = parser.parse_args()
    count = args.scenarios or (10 if args.quick else 40)
    nulls = args.null if args.null is not None else (2 if args.quick else 12)

    rows = []
    for i in range(count):
        cause, dataset = CAUSES[i % len(CAUSES)], DATASETS[(i // len(CAUSES)) % len(DATASETS)]
        seed = args.seed + i
        pulse = mlpulse.connect(":memory:")
        try:
            scenario = build(pulse, cause, dataset, seed)
            run(pulse, scenario)
            if scenario.incident is not None:
                start = time.perf_counter()
                assert len(pulse.incident(scenario.incident).root_cause) == len(scenario.root_cause)
                took = time.perf_counter() - start
                base = baseline_rank(pulse, scenario)
            else:
                took, base = float("nan"), None
        finally:
            pulse.close()
        top = scenario.root_cause.iloc[0] if scenario.root_cause is not None and len(scenario.root_cause) else None
        rows.append({
            "cause": cause, "dataset": dataset, "seed": seed, "incident": scenario.incident is not None,
            "rank": scenario.rank, "baseline_rank": base, "seconds": took,
            "top": f"{top['kind']}:{top['subject']}" if top is not None else "-",
            "truth": scenario.truth["subject"], "detail": scenario.truth.get("how", ""),
        })  # fmt: skip
        r = rows[-1]
        print(f"{i + 1:3d} {cause:8s} {dataset:14s} seed {seed:3d}: rank {r['rank']} (baseline "
              f"{base}) top {r['top']}  truth {r['truth']} {r['detail']}", flush=True)  # fmt: skip

    # nothing planted: a rule that always fires opens an incident on healthy traffic
    listed = []
    for i in range(nulls):
        dataset, seed = DATASETS[i % len(DATASETS)], 1000 + args.seed + i
        pulse = mlpulse.connect(":memory:")
        try:
            scenario = run(pulse, build(pulse, "none", dataset, seed))
            found = scenario.root_cause
        finally:
            pulse.close()
        listed.append(0 if found is None else len(found))
        print(f"null {dataset:14s} seed {seed}: {listed[-1]} listed"
              + (f" (top {found['kind'].iloc[0]}:{found['subject'].iloc[0]} {found['score'].iloc[0]:.2f})"
                 if listed[-1] else ""), flush=True)  # fmt: skip

    frame = pd.DataFrame(rows)
    n = len(frame)

    def hit(column: str, k: int) -> float:
        return float((frame[column].notna() & (frame[column].fillna(99) <= k)).sum() / n)

    per_cause = {
        c: {"n": int((g := frame[frame["cause"] == c]).shape[0]),
            "hit1": float((g["rank"] == 1).mean()), "hit3": float((g["rank"].fillna(99) <= 3).mean())}
        for c in CAUSES
    }  # fmt: skip
    metrics = {
        "scenarios": n,
        "incidents": int(frame["incident"].sum()),
        "hit_at_1": hit("rank", 1),
        "hit_at_3": hit("rank", 3),
        "baseline_hit_at_1": hit("baseline_rank", 1),
        "baseline_hit_at_3": hit("baseline_rank", 3),
        "root_cause_seconds_median": statistics.median(frame["seconds"].dropna()) if frame["incident"].any() else None,
        "null_incidents": nulls,
        "null_incidents_listing_anything": int(sum(1 for x in listed if x)),
        "per_cause": per_cause,
        "misses": frame[frame["rank"] != 1][["cause", "dataset", "seed", "rank", "top", "truth"]].to_dict("records"),
    }
    print(frame.groupby("cause")[["rank"]].agg(lambda s: (s == 1).mean()).rename(columns={"rank": "hit@1"}))
    print(f"hit@1 {metrics['hit_at_1']:.3f}  hit@3 {metrics['hit_at_3']:.3f}  baseline (by p-value) "
          f"hit@1 {metrics['baseline_hit_at_1']:.3f} hit@3 {metrics['baseline_hit_at_3']:.3f}")  # fmt: skip
    emit(
        "root_cause",
        args.quick,
        metrics,
        [target("hit@1", metrics["hit_at_1"], ">=", 0.9), target("scenarios", n, ">=", 10 if args.quick else 20)],
        params={"scenarios": n, "null": nulls, "first_seed": args.seed},
    )


if __name__ == "__main__":
    main()
