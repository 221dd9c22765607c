"""``driftd retrain list | show | ack | reject`` against a store with requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.store import open_store


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    for model in ("credit", "fraud"):
        store.insert_retrain_request(
            model=model, version="v1", segment="", reason="drift_persisted", now=datetime(2026, 12, 4, tzinfo=UTC),
            cooldown_seconds=60, build_payload=lambda request_id, created_at, model=model: {"request_id": request_id, "model": model},
        )
    store.close()
    return url


def run(*args: str):
    return CliRunner().invoke(app, ["retrain", *args])


def test_list_show_ack_reject(url):
    listed = run("list", "--url", url)
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert "status" in lines[0] and len(lines) == 3 and all("requested" in line for line in lines[1:])
    shown = run("show", "1", "--url", url)
    assert shown.exit_code == 0 and '"model": "credit"' in shown.output and "published -" in shown.output
    assert run("ack", "1", "--note", "job 17", "--url", url).exit_code == 0
    rejected = run("reject", "2", "--note", "seasonal, expected", "--url", url)
    assert rejected.exit_code == 0 and "fraud v1, drift_persisted): rejected" in rejected.output
    only = run("list", "--status", "acknowledged", "--url", url)
    assert "credit" in only.output and "fraud" not in only.output and "job 17" in only.output


def test_errors_are_clear(url):
    unknown = run("ack", "42", "--note", "x", "--url", url)
    assert unknown.exit_code == 1 and "no retrain request 42" in unknown.output
    assert run("ack", "1", "--url", url).exit_code == 0
    twice = run("reject", "1", "--url", url)
    assert twice.exit_code == 1 and "already acknowledged" in twice.output
    bad = run("list", "--status", "done", "--url", url)
    assert bad.exit_code == 2 and "allowed requested, acknowledged, rejected" in bad.output
    assert run("list").exit_code == 2
