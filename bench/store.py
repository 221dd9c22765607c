"""Store write and read throughput: batched ``Store.write_reports`` vs a naive ORM writer.

Usage::

    python bench/store.py [--url sqlite:///tmp/bench.db] [--days 2] [--models 10] [--features 50]

Writes ``days`` of 5-minute windows for ``models`` models with ``features`` features
each (the app's sizing is 30 days x 10 models x 50 features), closing one batch of
windows per 5 minutes as the daemon does (one window per model per call), then
times the app's reads. The baseline, measured in the same process on the same
data, is the obvious ORM code: one ``WindowResultRow`` with its
``FeatureResultRow`` children added per window and one commit per call.
Prints rows/s and the ratio. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "store"))

from conftest import build_report

from monitor.store import open_store
from monitor.store.schema import FeatureResultRow, WindowResultRow
from monitor.store.windows import feature_values, window_values

T0 = 1_767_225_600.0


def naive_write(store, reports) -> None:
    """What a first implementation would do: ORM objects, one per row."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    with store.session() as session, session.begin():
        for report in reports:
            values = window_values(report, now)
            window = WindowResultRow(**values)
            session.add(window)
            session.flush()
            for row in feature_values(report, window.id, values["window_start"]):
                session.add(FeatureResultRow(**row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="database URL (default: a temporary SQLite)")
    parser.add_argument("--days", type=float, default=0.5)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--features", type=int, default=50)
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    windows = int(args.days * 288)
    store = open_store(url)
    template = {
        m: build_report(model=f"m{m}", n_features=args.features, seed=m) for m in range(args.models)
    }

    def batch(w: int, prefix: str):
        start = T0 + 300 * w
        return [
            dataclasses.replace(
                report,
                key=report.key._replace(model=f"{prefix}{m}"),
                window_start=start,
                window_end=start + 300,
            )
            for m, report in template.items()
        ]

    rows_per_call = args.models * (args.features + 2)
    n_naive = min(windows, 50)
    started = time.perf_counter()
    for w in range(n_naive):
        naive_write(store, batch(w, "naive"))
    naive = n_naive * rows_per_call / (time.perf_counter() - started)
    started = time.perf_counter()
    for w in range(windows):
        store.write_reports(batch(w, "m"))
    batched = windows * rows_per_call / (time.perf_counter() - started)
    started = time.perf_counter()
    store.write_reports(batch(0, "m"))
    rewrite = time.perf_counter() - started
    print(
        f"{url.split(':')[0]}: {windows} windows x {args.models} models x "
        f"{args.features + 2} verdicts = {windows * rows_per_call:,} feature rows"
    )
    print(f"naive ORM writer : {naive:10,.0f} feature rows/s ({n_naive} calls)")
    print(f"write_reports    : {batched:10,.0f} feature rows/s  ratio {batched / naive:5.1f}x")
    print(f"rewrite of one close ({rows_per_call} rows, labels arrived): {rewrite * 1e3:.1f} ms")
    day = 288 * 300
    for name, call in (
        (
            "windows(model, last day)",
            lambda: store.windows(
                "m3", start=T0 + max(0, windows - 288) * 300, end=T0 + windows * 300
            ),
        ),
        (
            "feature_results(model, last day)",
            lambda: store.feature_results(
                "m3", T0 + max(0, windows * 300 - day), T0 + windows * 300
            ),
        ),
        (
            "feature_results(model, 1 feature, all)",
            lambda: store.feature_results("m3", T0, T0 + windows * 300, features=["f007"]),
        ),
        ("models()", store.models),
    ):
        started = time.perf_counter()
        result = call()
        print(
            f"{name:40s}: {len(result):7,d} rows in {(time.perf_counter() - started) * 1e3:7.1f} ms"
        )
    store.close()
    tmp.cleanup()


if __name__ == "__main__":
    main()
