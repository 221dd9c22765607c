"""Deep-link parsing and the pure reshaping behind the pages (no Streamlit run)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from dashboards.app.frames import (
    heatmap_bucket_seconds,
    heatmap_matrix,
    metric_frame,
    rank_features,
    summed_counts,
)
from dashboards.app.params import ParamError, parse_route, parse_time

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1763899200000", datetime(2025, 11, 23, 12, 0, tzinfo=UTC)),  # Grafana: epoch ms
        ("1763899200", datetime(2025, 11, 23, 12, 0, tzinfo=UTC)),  # alert rules: epoch s
        ("2026-11-23T09:00:00Z", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
        ("2026-11-23T10:00:00+01:00", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
        ("2026-11-23 09:00", datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),  # no offset: UTC
        ("now", NOW),
        ("now-6h", NOW - timedelta(hours=6)),
        ("now-30m", NOW - timedelta(minutes=30)),
        ("now-2d", NOW - timedelta(days=2)),
    ],
)
def test_times_in_every_form_links_use(text: str, expected: datetime) -> None:
    assert parse_time("from", text, NOW) == expected


@pytest.mark.parametrize("text", ["soon", "-5", "nan", "inf", "1e400", "now+1h", "2026-13-01"])
def test_unreadable_times_name_the_parameter(text: str) -> None:
    with pytest.raises(ParamError, match="`to`"):
        parse_time("to", text, NOW)


def test_routes() -> None:
    assert parse_route({}).page == "overview"
    assert parse_route({"incident": "12"}).incident_id == 12
    link = parse_route({"model": "churn", "version": "v2", "segment": "", "feature": "age",
                        "from": "1763899200", "to": "1763899500"}, NOW)
    assert (link.page, link.model, link.version, link.segment, link.feature) == (
        "incident", "churn", "v2", "", "age")
    assert link.end - link.start == timedelta(minutes=5)
    assert parse_route({"model": "churn"}).page == "model"
    assert parse_route({"page": "model", "model": "churn", "from": "now-7d"}, NOW).start == (
        NOW - timedelta(days=7))
    assert parse_route({"incident": ["3", "4"]}).incident_id == 4  # repeated key: the last


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"incident": "0"}, "positive whole number"),
        ({"incident": "-1"}, "positive whole number"),
        ({"page": "admin"}, "allowed: overview, incident, model"),
        ({"model": "m", "from": "now", "to": "now-1h"}, "must be before `to`"),
        ({"version": "v1"}, "need `model`"),
        ({"page": "incident"}, "needs `incident=ID` or `model=NAME`"),
        ({"model": "m" * 601}, "longer than 600"),
    ],
)
def test_bad_routes(params: dict, message: str) -> None:
    with pytest.raises(ParamError, match=message.replace("(", r"\(")):
        parse_route(params, NOW)


def _results() -> pd.DataFrame:
    t0 = pd.Timestamp("2026-11-20 10:00", tz="UTC")
    rows = []
    for i in range(4):
        for feature, score, drifted in (("a", 0.3 if i == 2 else 0.1, i == 2), ("b", 0.15, False),
                                        ("__prediction__", 0.9, True)):
            rows.append({"window_id": i, "window_start": t0 + pd.Timedelta(minutes=5 * i),
                         "feature": feature, "method": "psi", "score": score, "p_value": None,
                         "threshold": 0.2, "drifted": drifted, "counts": [i, 1]})
    return pd.DataFrame(rows)


def test_rank_features_drifted_windows_first_then_drift_by_importance() -> None:
    ranked = rank_features(_results())
    assert list(ranked["feature"]) == ["a", "b"]  # pseudo-features left out
    assert ranked["drift_ratio"].iloc[0] == pytest.approx(1.5)
    assert ranked["windows_drifted"].tolist() == [1, 0]
    # No importances at all: not a fake 1 for every feature, but none (and no source).
    assert ranked["importance"].isna().all() and ranked.attrs["importance_source"] == ""
    # "b" never drifts but carries nearly all the importance: the feature that drifted
    # in a window still comes first; importance orders features with as many windows.
    ranked = rank_features(_results(), {"a": 0.05, "b": 0.95})
    assert list(ranked["feature"]) == ["a", "b"]
    assert ranked["importance"].tolist() == pytest.approx([0.05, 0.95])
    assert ranked["rank_score"].iloc[1] == pytest.approx(0.75 * 0.95)
    assert "baseline" in ranked.attrs["importance_source"]
    both = pd.concat([_results(), _results().assign(feature=lambda f: f["feature"].replace({"a": "c"}))])
    assert list(rank_features(both, {"a": 0.1, "b": 0.1, "c": 0.8})["feature"])[:2] == ["c", "a"]
    # The alerted feature first, whatever its drift.
    assert rank_features(_results(), {"a": 0.05, "b": 0.95}, first="b")["feature"].iloc[0] == "b"
    # Without baseline importances the windows' mean |SHAP| is used.
    attributions = pd.Series([{"mean_abs_shap": {"a": 1.0, "b": 3.0}}])
    ranked = rank_features(_results(), None, attributions)
    assert ranked["importance"].tolist() == pytest.approx([0.25, 0.75])
    assert "SHAP" in ranked.attrs["importance_source"]


def test_summed_counts() -> None:
    results = _results()
    assert summed_counts(results, "a") == [0 + 1 + 2 + 3, 4]
    assert summed_counts(results, "zzz") is None


def test_heatmap_matrix_and_bucket_width() -> None:
    t0 = pd.Timestamp("2026-11-20 10:00", tz="UTC")
    cells = pd.DataFrame({"feature": ["a", "a", "b", "b"],
                          "window_start": [t0, t0 + pd.Timedelta(minutes=5)] * 2,
                          "ratio": [0.2, 1.5, 0.9, 0.8]})
    matrix = heatmap_matrix(cells)
    assert list(matrix.index) == ["b", "a"]  # worst feature last (drawn on top)
    assert matrix.loc["a"].tolist() == [0.2, 1.5]
    day = pd.Timedelta(days=1)
    assert heatmap_bucket_seconds(t0, t0 + day, 300) == 300  # 288 windows fit
    width = heatmap_bucket_seconds(t0, t0 + 30 * day, 300)
    assert math.ceil(30 * 86_400 / width) <= 288  # at most 288 columns
    assert width <= 30 * 86_400 / 288 + 1  # and no wider than needed


def test_metric_frame_reads_value_and_interval() -> None:
    windows = pd.DataFrame({
        "window_start": pd.to_datetime(["2026-11-20 10:00"], utc=True),
        "performance": [{"roc_auc": [0.8, 0.75, 0.85]}],
        "estimated_performance": [{}],
        "baseline_performance": [{"roc_auc": 0.82}],
        "n_labels": [10],
    })
    row = metric_frame(windows, "roc_auc").iloc[0]
    assert (row["value"], row["lower"], row["upper"], row["baseline"]) == (0.8, 0.75, 0.85, 0.82)
    assert pd.isna(row["estimated"])


def test_driftd_app_names_a_bad_config(tmp_path) -> None:
    from typer.testing import CliRunner

    from dashboards.app_cli import streamlit_command
    from monitor.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["app", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "cannot read configuration file" in result.output
    bad = tmp_path / "driftd.yaml"
    bad.write_text("app:\n  prot: 1\n", encoding="utf-8")
    result = runner.invoke(app, ["app", "--config", str(bad)])
    assert result.exit_code == 2 and "app.prot: unknown key" in result.output
    command = streamlit_command(8600, "127.0.0.1")
    assert command[command.index("--server.port") + 1] == "8600"
    assert not any("sqlite" in part or "postgresql" in part for part in command)
