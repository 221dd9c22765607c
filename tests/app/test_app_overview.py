"""The overview says what is wrong without Alertmanager; the incident page puts the alerted feature first.

The store is written by the daemon's own pipeline (``problem_store``): credit v1
drifts in num_0 and num_1, churn v3 loses its accuracy in region=eu, and no
incident exists until a test records one through the Alertmanager webhook
receiver. AppTest runs the real pages on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

import streamlit as st
from streamlit.testing.v1 import AppTest
from tests.app.problem_store import DRIFT_FROM, WINDOW, fill_problem_store
from tests.app.test_app_pages import chart, findings_table, metric, run, table

from dashboards.app import STORE_URL_ENV, queries

# num_1 drifts but barely matters to the model; num_2 matters most and never drifts.
IMPORTANCES = {
    "num_0": 0.01,
    "num_1": 0.005,
    "num_2": 0.5,
    "num_3": 0.3,
    "num_4": 0.1,
    "num_5": 0.05,
    "cat_0": 0.02,
    "cat_1": 0.015,
}


@pytest.fixture(autouse=True)
def _no_component_scan(monkeypatch) -> None:
    from streamlit.components.v2 import manifest_scanner

    monkeypatch.setattr(manifest_scanner, "scan_component_manifests", lambda *a, **k: [])


@pytest.fixture(params=["sqlite", "postgresql"])
def problems(request, tmp_path, monkeypatch) -> dict:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_schema_url")
    )
    times = fill_problem_store(url, importances=IMPORTANCES)
    monkeypatch.setenv(STORE_URL_ENV, url)
    st.cache_data.clear()
    yield {"url": url, **times}
    queries.get_store(url).close()
    st.cache_resource.clear()


def highlighted(element) -> set[tuple[int, str]]:
    """(row, column) of the cells a styled dataframe marks."""
    columns = list(element.value.columns)
    cells = re.findall(r"row(\d+)_col(\d+)", element.proto.arrow_data.styler.styles)
    return {(int(r), columns[int(c)]) for r, c in cells}


def since(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M")


def test_overview_names_the_drifting_and_the_failing_model(problems: dict) -> None:
    at = run()
    assert not at.error
    found = findings_table(at)
    rows = [(f["what"], f["model"], f["segment"]) for f in found]
    # The accuracy loss pages (critical) and comes first; drift of both credit segments follows.
    assert rows[0] == ("performance drop", "churn v3", "region=eu")
    assert ("drift", "credit v1", "region=eu") in rows and (
        "drift",
        "credit v1",
        "region=us",
    ) in rows
    assert not any(what == "stale" for what, _, _ in rows)  # the windows are fresh
    assert not any(
        model == "churn v3" and segment == "region=us" and what != "calibration"
        for what, model, segment in rows
    )
    churn = found[0]
    assert "driftd-critical" in churn["class"] and churn["about"] in ("roc_auc", "accuracy")
    assert float(churn["value"]) < float(churn["limit"])
    assert churn["since (UTC)"] == since(problems["drift"])
    credit = next(f for f in found if f["what"] == "drift" and f["segment"] == "region=eu")
    assert "driftd-warning" in credit["class"] and credit["about"].startswith("num_0, num_1")
    assert credit["since (UTC)"] == since(problems["drift"])
    link = dict(parse_qsl(credit["link"].lstrip("?")))
    assert (
        link["model"] == "credit" and link["segment"] == "region=eu" and link["feature"] == "num_0"
    )
    assert link["from"] == datetime.fromtimestamp(problems["drift"], UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert metric(at, "Critical") == "1" and metric(at, "Open incidents") == "0"

    # Model health: the out-of-threshold cells are marked, the healthy rows are not.
    health = at.dataframe[0].value
    marked = highlighted(at.dataframe[0])
    index = {(m, s): i for i, (m, s) in enumerate(zip(health["model"], health["segment"]))}
    assert (index[("churn v3", "region=eu")], "realised") in marked
    assert (index[("credit v1", "region=eu")], "flagged") in marked
    assert (index[("credit v1", "region=us")], "flagged") in marked
    assert not {c for r, c in marked if r == index[("churn v3", "region=us")]} - {"ECE"}
    assert health.loc[index[("churn v3", "region=eu")], "metric"] == churn["about"]

    # The finding opens the investigation page on the failing segment.
    at.selectbox(key="overview_finding").set_value(0).run()
    at.button(key="open_finding").click().run()
    assert at.query_params.get("model") in ("churn", ["churn"])
    assert at.title[0].value == "Investigation: churn"
    assert at.selectbox(key="incident_segment").value == "region=eu"


def _record_incident(url: str, feature: str, starts_at: float) -> int:
    from alerts.receiver import record_notification
    from monitor.store import open_store

    payload = {
        "version": "4",
        "status": "firing",
        "receiver": "driftd",
        "groupKey": "{}:{}",
        "alerts": [
            {
                "status": "firing",
                "fingerprint": "a1b2c3d4e5f60718",
                "labels": {
                    "alertname": "DriftdFeatureDrift",
                    "severity": "warning",
                    "model": "credit",
                    "version": "v1",
                    "segment": "region=eu",
                    "feature": feature,
                    "method": "wasserstein",
                },
                "annotations": {"summary": f"Feature {feature} of credit v1 drifted"},
                "startsAt": datetime.fromtimestamp(starts_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endsAt": "0001-01-01T00:00:00Z",
            }
        ],
    }
    store = open_store(url, create=False)
    (incident_id,) = record_notification(store.session, payload)
    store.close()
    return incident_id


def test_incident_page_ranks_the_alerted_feature_first(problems: dict) -> None:
    incident = _record_incident(problems["url"], "num_1", problems["drift"] + 2 * WINDOW)
    at = run(incident=str(incident))
    assert not at.error
    ranking = table(at, "rank_score")
    # Alerted feature, then the other feature with drifted windows, then drift x importance.
    assert list(ranking["feature"][:2]) == ["num_1", "num_0"]
    counts = list(ranking["windows_drifted"])
    assert counts[0] > 0 and counts[1:] == sorted(counts[1:], reverse=True)
    # On drift x importance alone num_2 (half the importance, never flagged) would lead.
    assert ranking["rank_score"].idxmax() == ranking.index[ranking["feature"] == "num_2"][0]
    assert at.selectbox(key="incident_feature").value == "num_1"
    caption = " ".join(c.value for c in at.caption)
    assert (
        "The alerted feature (num_1) comes first" in caption
        and "baseline's SHAP importances" in caption
    )
    involved = table(at, "model drifted")
    drifted_windows = int(ranking["windows_drifted"].iloc[0])
    assert metric(at, "num_1 drifted") == f"{drifted_windows} / {len(involved)}"
    assert (
        metric(at, "Dataset drifted") == f"{int(involved['model drifted'].sum())} / {len(involved)}"
    )
    shapes = _shapes(at, "num_1: wasserstein per window")
    assert shapes and any(
        a.get("text") == "incident" for a in _annotations(at, "num_1: wasserstein per window")
    )


def _shapes(at: AppTest, title: str) -> list:
    return chart(at, title)["layout"].get("shapes", [])


def _annotations(at: AppTest, title: str) -> list:
    return chart(at, title)["layout"].get("annotations", [])


def test_range_link_has_no_incident_band_and_names_missing_explanations(problems: dict) -> None:
    start = datetime.fromtimestamp(problems["drift"], UTC).isoformat()
    at = run(
        model="churn",
        version="v3",
        segment="region=eu",
        feature="num_0",
        **{"from": start, "to": "now"},
    )
    assert not at.error
    assert at.title[0].value == "Investigation: churn"
    caption = " ".join(c.value for c in at.caption)
    assert "No explanations for this model" in caption
    ranking = table(at, "rank_score")
    assert ranking["importance"].isna().all()
    for title in ("Share of drifted features", "num_0: wasserstein per window", "per window"):
        assert not _shapes(at, title), title
        assert not any(a.get("text") == "incident" for a in _annotations(at, title))
    assert DRIFT_FROM  # the drift start is inside the range shown
