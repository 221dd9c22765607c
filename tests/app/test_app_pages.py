"""AppTest tests of every page of the investigation app, on SQLite and PostgreSQL.

The store is filled with known rows (``app_store_fill``); the tests check that deep
links open the right incident, widgets change what is shown, bad links give a
message and what the page shows equals what the store holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("plotly")

import streamlit as st
from tests.app.app_store_fill import (
    DRIFT_WINDOWS,
    INCIDENT_START,
    N_WINDOWS,
    STEP,
    T0,
    churn_auc,
    fill_store,
    income_psi,
)
from sqlalchemy import create_engine, select
from streamlit.testing.v1 import AppTest

from dashboards.app import APP_SCRIPT, STORE_URL_ENV, queries
from monitor.store import open_store
from monitor.store.schema import IncidentNoteRow, IncidentRow


@pytest.fixture(autouse=True)
def _no_component_scan(monkeypatch) -> None:
    # Every new AppTest scans all installed distributions for custom components
    # (about 1.5 s on this machine); the app uses none.
    from streamlit.components.v2 import manifest_scanner

    monkeypatch.setattr(manifest_scanner, "scan_component_manifests", lambda *a, **k: [])


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path, monkeypatch) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    monkeypatch.setenv(STORE_URL_ENV, url)
    st.cache_data.clear()
    yield url
    # Close the app's pooled connections before the PostgreSQL schema is dropped.
    queries.get_store(url).close()
    st.cache_resource.clear()


@pytest.fixture
def ids(store_url: str) -> dict[str, int]:
    return fill_store(store_url)


def run(**params: str) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart(at: AppTest, title_part: str) -> dict:
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        if title_part in str(spec["layout"].get("title", {}).get("text", "")):
            return spec
    raise AssertionError(f"no chart titled like {title_part!r}")


def table(at: AppTest, column: str):
    """The first table shown with ``column`` (plain dataframes carry no key)."""
    for element in at.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no table with column {column!r}")


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}: {[m.label for m in at.metric]}"
    return values[0]


def findings_table(at: AppTest) -> list[dict[str, str]]:
    """Rows of the overview's "What is wrong right now" table (cells as text, plus class and link)."""
    from html.parser import HTMLParser

    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, str]] = []
            self.header: list[str] = []
            self.cells: list[str] = []
            self.attrs: dict[str, str] = {}
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "tr":
                self.cells, self.attrs = [], attrs
            elif tag in ("td", "th"):
                self.cell = []
            elif tag == "a":
                self.attrs["link"] = attrs.get("href", "")

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.cells.append("".join(self.cell))
                self.cell = None
            elif tag == "tr":
                if not self.header:
                    self.header = self.cells
                else:
                    self.rows.append({**dict(zip(self.header, self.cells)), "class": self.attrs.get("class", ""),
                                      "link": self.attrs.get("link", "")})

    tables = [m.value for m in at.markdown if 'class="driftd-findings"' in m.value]
    if not tables:
        return []
    parser = Rows()
    parser.feed(tables[0])
    return parser.rows


def test_overview_shows_models_and_incidents(ids: dict[str, int]) -> None:
    at = run()
    assert not at.error
    assert metric(at, "Models") == "2"
    assert metric(at, "Open incidents") == "2"  # churn drift and the pipeline alert
    assert metric(at, "Newest window (UTC)") == (T0 + (N_WINDOWS - 1) * STEP).strftime(
        "%m-%d %H:%M"
    )
    # Nothing drifts in the newest windows; every stream stopped long ago (stale) and
    # Alertmanager's two open alerts are listed beside them, the critical one first.
    found = findings_table(at)
    assert [(f["what"], f["model"], f["segment"]) for f in found] == [
        ("alert", "(pipeline)", "(all)"), ("stale", "fraud v1", "(all)"), ("stale", "fraud v1", "region=eu"),
        ("alert", "churn v2", "(all)"), ("stale", "churn v2", "(all)"),
    ]
    assert metric(at, "Wrong now") == "5" and metric(at, "Critical") == "1"
    assert found[0]["link"] == f"?incident={ids['pipeline']}"
    assert found[1]["link"] == "?page=model&model=fraud&version=v1"
    health = at.dataframe[0].value
    churn = health[health["model"] == "churn v2"].iloc[0]
    assert churn["metric"] == "roc_auc"
    assert churn["realised"] == pytest.approx(churn_auc(N_WINDOWS - 1))
    assert churn["baseline"] == pytest.approx(0.82)
    assert churn["ECE"] == pytest.approx(0.02)
    # 500 labels per window over 1000 + i events, 24 h before the newest window.
    events = sum(1000 + i for i in range(N_WINDOWS))
    assert churn["labelled"] == pytest.approx(500 * N_WINDOWS / events)
    assert set(health[health["model"] == "fraud v1"]["segment"]) == {"(all)", "region=eu"}
    open_ids = set(at.dataframe[1].value["id"])
    assert open_ids == {ids["churn"], ids["pipeline"]}


def test_overview_status_filter_changes_the_list(ids: dict[str, int]) -> None:
    at = run()
    at.multiselect(key="overview_status").set_value(["resolved"]).run()
    recent = at.dataframe[-1].value
    assert list(recent["id"]) == [ids["fraud"]]
    at.button(key="open_incident").click().run()
    assert at.query_params.get("incident") == str(ids["fraud"])
    assert at.title[0].value.startswith(f"Incident #{ids['fraud']}")


def test_incident_deep_link_opens_the_incident(ids: dict[str, int]) -> None:
    at = run(incident=str(ids["churn"]))
    assert not at.error
    assert at.title[0].value == f"Incident #{ids['churn']}: DriftdFeatureDrift"
    header = " ".join(m.value for m in at.markdown)
    assert f"Started **{INCIDENT_START:%Y-%m-%d %H:%M} UTC**" in header
    # The drifted feature is ranked first and selected; its numbers are the store's.
    ranking = table(at, "rank_score")
    assert ranking["feature"].iloc[0] == "income"
    assert ranking["max_score"].iloc[0] == pytest.approx(income_psi(DRIFT_WINDOWS[0]))
    assert ranking["windows_drifted"].iloc[0] == len(DRIFT_WINDOWS)
    assert ranking["importance"].iloc[0] == pytest.approx(0.5)
    assert at.selectbox(key="incident_feature").value == "income"
    assert metric(at, "psi (worst window)") == f"{income_psi(DRIFT_WINDOWS[0]):.4f}"
    assert metric(at, "Threshold") == "0.2000"
    timeline = chart(at, "income: psi per window")
    assert max(timeline["data"][0]["y"]) == pytest.approx(income_psi(DRIFT_WINDOWS[0]))
    distribution = chart(at, "income: window vs baseline")
    baseline = distribution["data"][0]["y"]
    assert baseline == pytest.approx([0.1, 0.3, 0.4, 0.2])
    # Performance around the incident is the stored realised AUC per window.
    auc = chart(at, "roc_auc per window")
    realised = next(d for d in auc["data"] if d.get("name") == "realised")
    assert min(realised["y"]) == pytest.approx(0.70)
    assert chart(at, "Reliability diagram")["data"][1]["name"] == "baseline"
    assert chart(at, "Feature importance")["data"][0]["x"][-1] == pytest.approx(0.5)
    assert chart(at, "SHAP values")["data"][0]["x"][-1] == pytest.approx(0.35)


def test_grafana_range_link_selects_model_range_and_feature(ids: dict[str, int]) -> None:
    start, end = T0 + 6 * STEP, T0 + 12 * STEP  # six windows before the drift
    at = run(model="churn", version="v2", feature="age",
             **{"from": str(int(start.timestamp() * 1000)), "to": str(int(end.timestamp() * 1000))})
    assert not at.error
    assert at.title[0].value == "Investigation: churn"
    assert at.selectbox(key="incident_feature").value == "age"
    assert metric(at, "Dataset drifted") == "0 / 6"
    assert metric(at, "age drifted") == "0 / 6"
    assert metric(at, "Events") == f"{sum(1000 + i for i in range(6, 12)):,}"
    # The incident that overlaps the range is offered.
    # A range reaching "now" is cut at the newest window; the overlapping incident is offered.
    at = run(model="churn", **{"from": INCIDENT_START.isoformat(), "to": "now"})
    assert metric(at, "Dataset drifted") == f"{DRIFT_WINDOWS[-1] - 12} / {N_WINDOWS - 13}"
    assert at.selectbox(key="related_incident").value == ids["churn"]


def test_feature_selection_changes_the_detail(ids: dict[str, int]) -> None:
    at = run(incident=str(ids["churn"]))
    at.selectbox(key="incident_feature").set_value("plan").run()
    assert metric(at, "chisquare (worst window)") == "0.0300"
    assert metric(at, "p-value") == "0.4700"
    labels = chart(at, "plan: window vs baseline")["data"][0]["x"]
    assert labels == ["basic", "pro", "other", "unseen"]


def test_prediction_search_finds_one_explanation(ids: dict[str, int]) -> None:
    at = run(incident=str(ids["churn"]))
    assert len(table(at, "prediction_id")) == len(DRIFT_WINDOWS)
    at.text_input(key="prediction_search").input("pred-0003").run()
    found = table(at, "prediction_id")
    assert list(found["prediction_id"]) == ["pred-0003"]
    at.text_input(key="prediction_search").input("nope").run()
    assert any("No explained prediction matches" in i.value for i in at.info)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"incident": "abc"}, "`incident` must be a positive whole number"),
        ({"incident": "9999"}, "Incident 9999 is not in the store"),
        ({"model": "churn", "from": "yesterday-ish"}, "`from`: cannot read 'yesterday-ish'"),
        ({"model": "churn", "from": "2026-11-20T12:00:00Z", "to": "2026-11-20T11:00:00Z"},
         "`from` (2026-11-20 12:00:00 UTC) must be before `to`"),
        ({"model": "nosuch", "from": "now-1h"}, "model 'nosuch' has no results"),
        ({"model": "churn", "version": "v9", "feature": "age"}, "has no version 'v9'"),
        ({"page": "secret"}, "`page`: unknown page 'secret'"),
        ({"page": "model", "model": "nosuch"}, "Model 'nosuch' has no results"),
        ({"feature": "age"}, "`version` and `feature` need `model` too"),
    ],
)
def test_bad_parameters_give_a_clear_message(ids, params: dict, message: str) -> None:
    at = run(**params)
    errors = " ".join(e.value for e in at.error)
    assert message in errors


def test_model_page_heatmap_and_range_control(ids: dict[str, int]) -> None:
    at = run(page="model", model="churn")
    assert at.title[0].value == "Model churn"
    heatmap = chart(at, "Drift by feature")
    assert heatmap["data"][0]["y"][-1] == "income"  # the worst feature on top
    assert max(max(row) for row in heatmap["data"][0]["z"]) == pytest.approx(0.45 / 0.2)
    assert "24 windows" in at.caption[0].value
    # A link's range wins; switching to a preset range changes what is shown.
    at = run(page="model", model="churn", **{"from": T0.isoformat(),
                                             "to": (T0 + 6 * STEP).isoformat()})
    assert "6 windows" in at.caption[0].value
    assert chart(at, "roc_auc per window")["data"][2]["y"] == pytest.approx(
        [churn_auc(i) for i in range(6)]
    )
    at.selectbox(key="model_range").set_value("last 6 hours").run()
    assert "24 windows" in at.caption[0].value
    at.selectbox(key="model_pick").set_value("fraud").run()
    assert at.title[0].value == "Model fraud"
    assert at.selectbox(key="model_segment").options == ["(all segments)", "region=eu"]


def test_acknowledge_and_resolve_are_stored(ids: dict[str, int], store_url: str) -> None:
    at = run(incident=str(ids["churn"]))
    at.button(key="FormSubmitter:incident_note-Save").click().run()  # no author
    assert any("author: enter your name" in e.value for e in at.error)
    at.text_input(key="note_author").input("alice")
    at.radio(key="note_action").set_value("acknowledge")
    at.text_area(key="note_text").input("looking at the income pipeline")
    at.button(key="FormSubmitter:incident_note-Save").click().run()
    assert not at.exception
    assert "status **acknowledged**" in " ".join(m.value for m in at.markdown)
    engine = create_engine(store_url)
    with engine.connect() as conn:
        notes = conn.execute(select(IncidentNoteRow.author, IncidentNoteRow.action,
                                    IncidentNoteRow.text)).all()
        status = conn.execute(select(IncidentRow.status).where(IncidentRow.id == ids["churn"]))
        assert status.scalar_one() == "acknowledged"
    assert [tuple(n) for n in notes] == [("alice", "acknowledge", "looking at the income pipeline")]
    timeline = table(at, "by")
    assert list(timeline["by"]) == ["", "alice"]
    at.text_input(key="note_author").input("bob")
    at.radio(key="note_action").set_value("resolve")
    at.button(key="FormSubmitter:incident_note-Save").click().run()
    with engine.connect() as conn:
        row = conn.execute(select(IncidentRow.status, IncidentRow.ends_at)
                           .where(IncidentRow.id == ids["churn"])).one()
    engine.dispose()
    assert row.status == "resolved" and row.ends_at is not None


def test_pipeline_incident_without_a_model(ids: dict[str, int]) -> None:
    at = run(incident=str(ids["pipeline"]))
    assert not at.error
    assert any("not about one model" in i.value for i in at.info)


def test_empty_store_shows_guidance(store_url: str) -> None:
    open_store(store_url).engine.dispose()  # tables, no rows
    for params in ({}, {"page": "model"}):
        at = run(**params)
        assert not at.error
        assert any("The store holds no results yet" in i.value for i in at.info)


def test_store_without_tables_names_the_fix(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv(STORE_URL_ENV, url)
    st.cache_data.clear()
    at = run()
    assert any("driftd store migrate" in e.value for e in at.error)


def test_incident_of_a_model_without_windows_still_opens(ids, store_url: str) -> None:
    store = open_store(store_url, create=False)
    with store.session() as session:
        ghost = IncidentRow(
            fingerprint="d" * 16, alertname="DriftdModelDrift", status="firing",
            severity="critical", model="ghost", version="v1", segment="", feature="",
            labels={}, annotations={}, starts_at=T0, ends_at=None, updated_at=T0,
        )
        session.add(ghost)
        session.commit()
        ghost_id = ghost.id
    store.engine.dispose()
    at = run(incident=str(ghost_id))
    assert at.title[0].value == f"Incident #{ghost_id}: DriftdModelDrift"
    assert any("ghost" in i.value and "no closed window" in i.value
               for i in [*at.info, *at.warning])
    assert at.text_input(key="note_author") is not None  # the note form is still there


def test_store_with_an_older_schema_names_the_upgrade(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = open_store(url, create=False)
    store.migrate("0003")  # the schema before window_results.n_late
    store.close()
    monkeypatch.setenv(STORE_URL_ENV, url)
    st.cache_data.clear()
    fill_rows = create_engine(url)
    with fill_rows.begin() as conn:
        conn.exec_driver_sql(
            "insert into window_results (model, version, segment, window_start, window_end, closed_at, "
            "updated_at, n_events, n_labels, drift_share, drift_score, model_drifted, performance, "
            "baseline_performance, estimated_performance, calibration, baseline_calibration, attribution, "
            "n_drifted_features) values ('m', 'v', '', '2026-01-01 00:00:00.000000', "
            "'2026-01-01 00:05:00.000000', '2026-01-01 00:05:00.000000', '2026-01-01 00:05:00.000000', "
            "10, 0, 0, 0, 0, '{}', '{}', '{}', '{}', '{}', '{}', 0)")
    fill_rows.dispose()
    at = run()
    assert any("driftd store upgrade" in e.value for e in at.error), [e.value for e in at.error]
