"""Concept drift on river's synthetic streams: driftd's detectors beside river's.

For SEA and Agrawal ``ConceptDriftStream``s with a known drift position, a model is
trained on the first examples (before the drift), its per-event error stream is
computed on the rest, and ADWIN, Page–Hinkley and DDM from ``detectors.sequential``
and from river 0.26.1 run on the *same* error stream. Printed per detector:
alarms identical to river's, mean detection delay (events after the true drift
position until the first alarm; "missed" when none), false alarms (before the drift),
and the time per update of each implementation with the ratio driftd / river.

Run: ``python bench/concept.py [--seeds 5] [--n 20000]`` (not part of the tests).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from river import drift as river_drift
from river.datasets import synth
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from detectors.sequential import ADWIN, DDM, PageHinkley

TRAIN = 2000
POSITION = 8000


def _streams(seed: int, n: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    specs = {
        "SEA 0->3 (sudden, width 50)": (synth.SEA(variant=0, seed=seed), synth.SEA(variant=3, seed=seed + 1), 50),
        "Agrawal 0->2 (gradual, width 500)": (
            synth.Agrawal(classification_function=0, seed=seed),
            synth.Agrawal(classification_function=2, seed=seed + 1),
            500,
        ),
    }
    for name, (before, after, width) in specs.items():
        stream = synth.ConceptDriftStream(before, after, position=POSITION, width=width, seed=seed)
        rows = list(itertools.islice(stream, n))
        keys = sorted(rows[0][0])
        X = np.array([[x[k] for k in keys] for x, _ in rows], dtype=np.float64)
        y = np.array([int(label) for _, label in rows])
        out[name] = (X, y)
    return out


def _errors(name: str, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    model = LogisticRegression(max_iter=1000) if name.startswith("SEA") else DecisionTreeClassifier(max_depth=6, random_state=0)
    model.fit(X[:TRAIN], y[:TRAIN])
    return (model.predict(X[TRAIN:]) != y[TRAIN:]).astype(np.float64)


def _river_run(detector, errors: np.ndarray) -> tuple[list[int], float]:
    values = errors.tolist()
    began = time.perf_counter()
    alarms = []
    for i, x in enumerate(values):
        detector.update(x)
        if detector.drift_detected:
            alarms.append(i)
    return alarms, time.perf_counter() - began


def _ours_run(detector, errors: np.ndarray) -> tuple[list[int], float]:
    began = time.perf_counter()
    alarms = detector.update_many(errors).tolist()
    return alarms, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    pairs = {
        "ADWIN": (ADWIN, river_drift.ADWIN),
        "PageHinkley": (PageHinkley, river_drift.PageHinkley),
        "DDM": (DDM, river_drift.binary.DDM),
    }
    drift_at = POSITION - TRAIN  # index of the drift in the error stream
    results: dict[tuple[str, str], dict[str, list]] = {}
    for seed in range(args.seeds):
        for name, (X, y) in _streams(seed, args.n).items():
            errors = _errors(name, X, y)
            for det_name, (ours_cls, river_cls) in pairs.items():
                ours, t_ours = _ours_run(ours_cls(), errors)
                theirs, t_river = _river_run(river_cls(), errors)
                row = results.setdefault((name, det_name), {"same": [], "delay": [], "false": [], "t_ours": [], "t_river": [], "err": []})
                row["same"].append(ours == theirs)
                after = [a for a in ours if a >= drift_at]
                row["delay"].append(after[0] - drift_at if after else None)
                row["false"].append(sum(a < drift_at for a in ours))
                row["t_ours"].append(t_ours / len(errors))
                row["t_river"].append(t_river / len(errors))
                row["err"].append((errors[:drift_at].mean(), errors[drift_at:].mean()))
    print(f"{args.seeds} seeds, {args.n} events, model trained on the first {TRAIN}, drift at event {POSITION}\n")
    header = f"{'stream':36} {'detector':12} {'= river':>8} {'delay (mean)':>13} {'missed':>7} {'false/run':>10} {'driftd us':>10} {'river us':>9} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for (name, det_name), row in results.items():
        delays = [d for d in row["delay"] if d is not None]
        mean_delay = f"{np.mean(delays):.0f}" if delays else "-"
        t_ours, t_river = np.mean(row["t_ours"]) * 1e6, np.mean(row["t_river"]) * 1e6
        print(
            f"{name:36} {det_name:12} {sum(row['same'])}/{len(row['same']):<6} {mean_delay:>13} "
            f"{row['delay'].count(None):>7} {np.mean(row['false']):>10.2f} {t_ours:>10.2f} {t_river:>9.2f} {t_ours / t_river:>6.2f}"
        )
    print("\nfalse alarms per 100k events on stationary 0/1 error streams (driftd detectors, defaults):")
    rng = np.random.default_rng(0)
    print(f"  {'error rate':>10} " + " ".join(f"{d:>12}" for d in pairs))
    for rate in (0.01, 0.05, 0.2, 0.4):
        stream = (rng.random(100_000) < rate).astype(np.float64)
        counts = [len(ours_cls().update_many(stream)) for ours_cls, _ in pairs.values()]
        print(f"  {rate:>10.2f} " + " ".join(f"{c:>12}" for c in counts))
    print("\nerror rate before / after the drift (mean over seeds):")
    for name in dict.fromkeys(n for n, _ in results):
        before, after = np.mean([e for e in results[(name, 'ADWIN')]["err"]], axis=0)
        print(f"  {name:36} {before:.3f} -> {after:.3f}")


if __name__ == "__main__":
    main()
