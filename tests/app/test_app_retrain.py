"""The overview lists the retrain requests the daemon stored (AppTest on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytest.importorskip("streamlit")

from monitor.store import open_store
from tests.app.app_store_fill import fill_store
from tests.app.test_app_pages import _no_component_scan, run, store_url, table  # noqa: F401 - fixtures


def payload(request_id: str, created_at: datetime) -> dict:
    return {
        "request_id": request_id, "app_link": "http://app:8501/?page=model&model=churn",
        "windows": [{"start": "2026-01-01T00:05:00Z", "end": "2026-01-01T00:10:00Z"},
                    {"start": "2026-01-01T00:10:00Z", "end": "2026-01-01T00:15:00Z"}],
        "drifted_features": [{"feature": "tenure"}, {"feature": "plan"}],
    }


def test_overview_lists_retrain_requests(store_url: str) -> None:  # noqa: F811
    fill_store(store_url)
    store = open_store(store_url)
    first, _ = store.insert_retrain_request(model="churn", version="v2", segment="", reason="drift_persisted",
                                            now=datetime(2026, 12, 1, tzinfo=UTC), cooldown_seconds=60, build_payload=payload)
    store.insert_retrain_request(model="fraud", version="v1", segment="", reason="performance_dropped",
                                 now=datetime(2026, 12, 2, tzinfo=UTC), cooldown_seconds=60, build_payload=payload)
    store.act_on_retrain_request(first.id, "acknowledged", "job 17", datetime(2026, 12, 3, tzinfo=UTC))
    store.close()
    at = run()
    requests = table(at, "reason")
    assert list(requests["model"]) == ["fraud", "churn"]
    assert list(requests["status"]) == ["requested", "acknowledged"]
    assert requests["note"].iloc[1] == "job 17"
    assert requests["drifted_features"].iloc[0] == "tenure, plan"
    assert requests["windows"].iloc[0] == "2026-01-01T00:05:00Z – 2026-01-01T00:15:00Z (2)"
    assert any("2 request(s), 1 waiting" in c.value for c in at.caption)


def test_overview_without_requests_says_so(store_url: str) -> None:  # noqa: F811
    fill_store(store_url)
    at = run()
    assert any("No retrain request" in c.value for c in at.caption)
