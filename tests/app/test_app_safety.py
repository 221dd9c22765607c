"""Alert text is shown as plain text (a ``javascript:`` runbook link is never a link),
notes are capped, and with ``app.author_header`` the author comes from the sign-in
proxy: a note without that header is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")

import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from alerts.receiver import record_notification
from dashboards.app import APP_SCRIPT, CONFIG_ENV, STORE_URL_ENV, queries
from dashboards.app.params import AppError
from dashboards.app.safety import check_note, note_author, plain, safe_link
from monitor.store import open_store
from monitor.store.schema import IncidentNoteRow

EVIL = "javascript:alert(document.cookie)"


@pytest.fixture(autouse=True)
def _no_component_scan(monkeypatch) -> None:
    from streamlit.components.v2 import manifest_scanner

    monkeypatch.setattr(manifest_scanner, "scan_component_manifests", lambda *a, **k: [])


@pytest.fixture
def incident(tmp_path: Path, monkeypatch) -> tuple[str, int]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    payload = {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "fingerprint": "abc123",
                "labels": {
                    "alertname": "DriftdModelDrift",
                    "severity": "critical",
                    "model": "churn",
                },
                "annotations": {
                    "summary": f"click [here]({EVIL}) <img src=x onerror=alert(1)>",
                    "description": "**bold** and [link](https://ok.example)",
                    "runbook_url": EVIL,
                },
                "startsAt": "2026-12-01T10:00:00Z",
            }
        ],
    }
    (incident_id,) = record_notification(store.session, payload)
    store.close()
    monkeypatch.setenv(STORE_URL_ENV, url)
    st.cache_data.clear()
    yield url, incident_id
    queries.get_store(url).close()
    st.cache_resource.clear()


def _run(incident_id: int) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=60)
    at.query_params.update(incident=str(incident_id))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_alert_text_is_plain_and_a_javascript_runbook_is_not_a_link(incident) -> None:
    _, incident_id = incident
    at = _run(incident_id)
    shown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "\\[here\\]\\(javascript:alert\\(document.cookie\\)\\)" in shown
    assert "\\<img" in shown and "\\*\\*bold\\*\\*" in shown
    assert not at.get("link_button")  # no runbook button for a javascript: URL
    assert "runbook link not shown (not an http(s) URL)" in shown


def test_a_note_without_the_proxy_header_is_refused(incident, tmp_path: Path, monkeypatch) -> None:
    url, incident_id = incident
    config = tmp_path / "driftd.yaml"
    config.write_text("app: {author_header: X-Forwarded-User, max_note_chars: 50}\n")
    monkeypatch.setenv(CONFIG_ENV, str(config))
    at = _run(incident_id)
    assert not at.text_input  # no name to type: the proxy says who it is
    at.text_area(key="note_text").input("forged note")
    at.button(key="FormSubmitter:incident_note-Save").click().run()
    assert any("X-Forwarded-User header" in e.value for e in at.error)
    store = open_store(url, create=False)
    with store.session() as session:
        assert session.scalars(select(IncidentNoteRow)).all() == []
    store.close()


def test_helpers() -> None:
    assert safe_link("https://runbooks.example/x") == "https://runbooks.example/x"
    for bad in (
        EVIL,
        "data:text/html,<script>",
        "vbscript:x",
        "http://",
        "/relative",
        "https://a b",
        "file:///etc/passwd",
        "https://x\n.example",
        7,
        None,
        "https://x/" + "a" * 3000,
    ):
        assert safe_link(bad) is None, bad
    assert plain("[a](b)") == "\\[a\\]\\(b\\)"
    assert note_author({"x-forwarded-user": " alice "}, "X-Forwarded-User", "bob") == "alice"
    with pytest.raises(AppError, match="X-Forwarded-User"):
        note_author({"X-Forwarded-User": " "}, "X-Forwarded-User", "mallory")
    assert check_note("x" * 50, 50) == "x" * 50
    with pytest.raises(AppError, match="at most 50 \\(app.max_note_chars\\)"):
        check_note("x" * 51, 50)
