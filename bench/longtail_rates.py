"""False-alarm and power rates on long-tailed categories (issue 19; docs/detectors.md).

Zipf(1.1) "city" over 5,000 and 50,000 levels, reference 50,000 rows, a normal and
a lognormal feature alongside. Each window is scored through the daemon's path
(Layout -> WindowAggregate -> evaluate_window) and by ``run_comparison`` with its
defaults. Prints one Markdown table row per cell.

    .venv/bin/python bench/longtail_rates.py [daemon_windows] [compare_windows]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.compare import run_comparison
from tests.detectors.detectors_pipeline import PipelinePath
from tests.detectors.longtail import LongTail, split


def city(results):
    return next(r for r in results if r.feature == "city")


def main(daemon_windows: int = 100, compare_windows: int = 20) -> None:
    print(
        "| levels | window rows | change | daemon: city flagged | daemon: any feature | run_comparison: city |"
    )
    print("|---|---|---|---|---|---|")
    cells = [(rows, "none", {}) for rows in (300, 1_000, 5_000, 20_000)]
    cells += [
        (5_000, "new category 5 %", {"new_share": 0.05}),
        (5_000, "5-point move top-1 -> top-2", {"move": (0, 1, 0.05)}),
    ]
    for levels in (5_000, 50_000):
        tail = LongTail(levels)
        reference = tail.reference()
        path = PipelinePath(reference)
        for rows, label, change in cells:
            rng = np.random.default_rng(rows + 17 * len(label))
            city_flags = any_flags = compare_flags = 0
            for i in range(daemon_windows):
                window = tail.frame(rng, rows, **change)
                report = path.evaluate(path.aggregate(*split(window)))
                city_flags += city(report.features).drifted
                any_flags += any(r.drifted for r in report.features)
                if i < compare_windows:
                    comparison = run_comparison(reference, window, multivariate="none")
                    compare_flags += city([row.result for row in comparison.rows]).drifted
            print(
                f"| {levels:,} | {rows:,} | {label} | {city_flags}/{daemon_windows} | {any_flags}/{daemon_windows} "
                f"| {compare_flags}/{compare_windows} |",
                flush=True,
            )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
