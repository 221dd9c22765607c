"""Property tests: whatever a report or checkpoint holds, the store gives it back unchanged."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.store.test_store_api import comparable

from detectors.base import DriftResult
from monitor.results import (
    LABEL,
    PREDICTION,
    AttributionSummary,
    MetricValue,
    WindowKey,
    WindowReport,
)

# Any text PostgreSQL can hold (no NUL characters).
TEXT = st.text(st.characters(blacklist_characters="\x00"), max_size=256)
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789.- é", min_size=1, max_size=24)
# Scores are FLOAT columns: NaN (as NULL) and infinities survive. JSON maps keep NaN (as null).
SCORES = st.floats(allow_nan=True, allow_infinity=True)
JSON_FLOATS = st.floats(allow_nan=True, allow_infinity=False)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
METRICS = st.dictionaries(NAMES, st.builds(MetricValue, JSON_FLOATS, JSON_FLOATS, JSON_FLOATS, JSON_FLOATS),
                          max_size=4)


def results(names, prefix=""):
    return st.lists(
        st.builds(
            DriftResult,
            method=st.sampled_from(["psi", "ks", "wasserstein", "jensen_shannon", "chi_square"]),
            feature=names,
            score=SCORES,
            p_value=st.none() | st.floats(0, 1),
            threshold=FINITE,
            drifted=st.booleans(),
        ),
        max_size=6,
    )


@st.composite
def reports(draw):
    features = draw(results(NAMES.filter(lambda n: not n.startswith("__"))))
    names = [r.feature for r in features]
    start = float(draw(st.integers(0, 4_000_000_000)))
    kinds = {n: draw(st.sampled_from(["numeric", "categorical"])) for n in names}
    return WindowReport(
        key=WindowKey(draw(NAMES), draw(NAMES), draw(st.just("") | NAMES)),
        window_start=start,
        window_end=start + draw(st.integers(1, 86_400)),
        n_events=draw(st.integers(0, 2**31 - 1)),
        features=features,
        prediction=draw(results(st.just(PREDICTION))),
        label=draw(results(st.just(LABEL))),
        drift_share=draw(FINITE),
        drift_score=draw(FINITE),
        model_drifted=draw(st.booleans()),
        missing_ratio={n: draw(st.floats(0, 1)) for n in names if draw(st.booleans())},
        unseen_ratio={n: draw(st.floats(0, 1)) for n in names if draw(st.booleans())},
        feature_counts={n: draw(st.lists(st.integers(0, 2**40), max_size=12)) for n in names
                        if draw(st.booleans())},
        feature_kinds=kinds | {PREDICTION: "categorical", LABEL: "categorical"},
        closed_at=start + draw(st.integers(1, 10_000)),
        n_labels=draw(st.integers(0, 1000)),
        performance=draw(METRICS),
        baseline_performance=draw(st.dictionaries(NAMES, JSON_FLOATS, max_size=3)),
        estimated_performance=draw(METRICS),
        calibration=draw(st.dictionaries(NAMES, JSON_FLOATS, max_size=3)),
        baseline_calibration=draw(st.dictionaries(NAMES, JSON_FLOATS, max_size=3)),
        attribution=draw(st.none() | st.builds(
            AttributionSummary, ndcg=JSON_FLOATS, drifted=st.booleans(), threshold=JSON_FLOATS,
            n_explanations=st.integers(0, 10_000),
            mean_abs_shap=st.dictionaries(NAMES, JSON_FLOATS, max_size=3),
            relative_change=st.dictionaries(NAMES, JSON_FLOATS, max_size=3),
        )),
    )


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(report=reports())
def test_any_report_round_trips(store, report):
    store.write_reports([report])
    got = comparable(store.window_report(*report.key, report.window_start))
    # Per-feature maps are only stored for features that have verdict rows.
    rows = {r.feature for r in (*report.features, *report.prediction, *report.label)}
    for field in ("missing_ratio", "unseen_ratio", "feature_counts", "feature_kinds"):
        mapping = getattr(report, field)
        setattr(report, field, {k: v for k, v in mapping.items() if k in rows})
    expected = comparable(report)
    assert got == expected


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=TEXT.filter(bool).map(lambda s: s[:256]),
       offsets=st.dictionaries(TEXT.map(lambda s: s[:40]), st.integers(0, 2**62), max_size=20),
       state=st.binary(max_size=5000))
def test_any_checkpoint_round_trips(store, name, offsets, state):
    store.save_checkpoint(name, offsets, state)
    assert store.load_checkpoint(name) == (offsets, state)
