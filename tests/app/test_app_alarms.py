"""The sequential-alarms section of the model page and the incident page shows the
alarms the daemon stored (AppTest on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

pytest.importorskip("streamlit")

from monitor.store import open_store
from monitor.truth.alarms import ConceptAlarm
from tests.app.app_store_fill import DRIFT_WINDOWS, STEP, T0, fill_store
from tests.app.test_app_pages import _no_component_scan, run, store_url, table  # noqa: F401 - fixtures

ALARMS = [
    ConceptAlarm("churn", "v2", "", "ddm", (T0 + DRIFT_WINDOWS[0] * STEP).timestamp() + 40, 812, 3.4),
    ConceptAlarm("churn", "v2", "", "adwin", (T0 + DRIFT_WINDOWS[1] * STEP).timestamp() + 10, 1024, 0.21),
    ConceptAlarm("churn", "v2", "region=eu", "adwin", (T0 + DRIFT_WINDOWS[1] * STEP).timestamp(), 99, 0.3),
    ConceptAlarm("fraud", "v1", "", "page_hinkley", T0.timestamp(), 50, 51.0),
]


@pytest.fixture
def ids(store_url: str) -> dict[str, int]:  # noqa: F811 - store_url is the imported fixture
    created = fill_store(store_url)
    store = open_store(store_url)
    assert store.add_alarms(ALARMS) == len(ALARMS)
    assert store.add_alarms(ALARMS) == 0  # a replay stores nothing twice
    store.close()
    return created


def test_model_page_lists_the_stored_alarms_of_the_key(ids: dict[str, int]) -> None:
    at = run(page="model", model="churn")
    alarms = table(at, "position")
    # Newest first, only churn v2 segment "" (the page's key), the store's values.
    assert list(alarms["detector"]) == ["adwin", "ddm"]
    assert list(alarms["position"]) == [1024, 812]
    assert list(alarms["statistic"]) == pytest.approx([0.21, 3.4])
    assert alarms["event time (UTC)"].iloc[0].timestamp() == ALARMS[1].event_time
    assert any("2 alarm(s)" in c.value for c in at.caption)


def test_incident_performance_tab_lists_alarms_in_the_incident_range(ids: dict[str, int]) -> None:
    at = run(incident=str(ids["churn"]))
    alarms = table(at, "position")
    assert set(alarms["detector"]) == {"adwin", "ddm"}


def test_a_key_without_alarms_says_so(ids: dict[str, int]) -> None:
    at = run(page="model", model="churn", **{"from": T0.isoformat(), "to": (T0 + timedelta(minutes=30)).isoformat()})
    assert any("No ADWIN, Page–Hinkley or DDM alarm" in c.value for c in at.caption)
