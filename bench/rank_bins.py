"""Cost of adaptive ROC AUC bins in the label join, against the join without them.

200,000 binary predictions with saturated scores (binormal logits, sd 6) are joined
to their labels in batches of 5,000 by ``GroundTruth`` twice in the same process:
with the baseline's adaptive score bins (rank counts per window: positives,
negatives, lowest and highest score per bin) and with rank counting switched off
(what the join did before). Printed: labels/s of each, the ratio, the bins, and the
per-window rank-count size in memory and in a checkpoint.

Run: ``python -m bench.rank_bins [--n 200000] [--repeats 3]`` (not part of the tests).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import orjson
import pandas as pd

import monitor.truth.join as join
from monitor.baseline import build_baseline
from monitor.batch import LabelBatch, PredictionBatch
from monitor.config import LabelSettings, ModelSettings
from monitor.truth import GroundTruth

WINDOW = 300.0


def _scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    positive = rng.random(n) < 0.4
    logit = np.where(positive, rng.normal(4, 6, n), rng.normal(-4, 6, n))
    return 1 / (1 + np.exp(-logit)), positive


def _run(baseline, scores, positive, batch: int) -> tuple[float, GroundTruth]:
    n = len(scores)
    ids = [f"p{i}" for i in range(n)]
    times = 1_700_000_100.0 + np.linspace(0, 20 * WINDOW, n)
    truth = GroundTruth(LabelSettings(max_pending=n), {"m": ModelSettings(name="m")}, lambda m, v: baseline, None, WINDOW,
                        max_windows_per_key=100)
    predictions = PredictionBatch(
        model="m", version="v1", prediction_ids=ids, event_times=times, segments=[""] * n,
        numeric_names=[], numeric=np.empty((n, 0)), categorical_names=[], categorical=np.empty((n, 0), object),
        predictions=np.where(scores >= 0.5, "1", "0").astype(object), scores=scores,
    )
    truth.add_predictions(predictions, np.floor(times / WINDOW) * WINDOW)
    labels = positive.astype(int).tolist()
    began = time.perf_counter()
    for lo in range(0, n, batch):
        truth.add_labels(LabelBatch(ids[lo:lo + batch], labels[lo:lo + batch], times[lo:lo + batch], [None] * len(ids[lo:lo + batch])))
        truth.updates()
    return n / (time.perf_counter() - began), truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ref, ref_positive = _scores(rng, 20_000)
    frame = pd.DataFrame({"x": rng.normal(size=len(ref)), "y": ref_positive.astype(int),
                          "pred": (ref >= 0.5).astype(int), "score": ref})
    baseline = build_baseline(frame, "m", "v1", target="y", prediction="pred", score="score", task="binary")
    scores, positive = _scores(rng, args.n)
    original = join.score_bins
    with_bins, without = [], []
    for _ in range(args.repeats):  # alternate, so that machine load hits both alike
        join.score_bins = original
        rate, truth = _run(baseline, scores, positive, 5000)
        with_bins.append(rate)
        join.score_bins = lambda baseline: None
        without.append(_run(baseline, scores, positive, 5000)[0])
    join.score_bins = original
    window = next(iter(next(iter(truth._windows.values())).values()))  # noqa: SLF001
    ranks = window.binary.ranks
    print(f"bins: {ranks.positives.size} (baseline edges: {len(baseline.score_edges)})")
    print(f"rank counts per window: {4 * 8 * ranks.positives.size / 1024:.1f} KiB in memory, "
          f"{len(orjson.dumps(ranks.to_state())) / 1024:.1f} KiB in a checkpoint ({(ranks.positives + ranks.negatives > 0).sum()} bins used)")
    a, b = float(np.median(with_bins)), float(np.median(without))
    pairs = np.median(np.asarray(with_bins) / np.asarray(without))
    print(f"labels/s with adaptive bins {a:,.0f}, without rank counts {b:,.0f} (medians); "
          f"median pair ratio {pairs:.3f}")


if __name__ == "__main__":
    main()
