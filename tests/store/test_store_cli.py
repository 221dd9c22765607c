"""``driftd store upgrade | status | retention`` against real databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from monitor.store import open_store
from monitor.store.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_upgrade_then_status(store_url):
    first = invoke("upgrade", "--url", store_url)
    assert first.exit_code == 0, first.output
    assert "upgraded from empty to 0007" in first.output
    again = invoke("upgrade", "--url", store_url)
    assert again.exit_code == 0 and "already at revision 0007" in again.output
    status = invoke("status", "--url", store_url)
    assert status.exit_code == 0 and "revision 0007, up to date" in status.output
    store = open_store(store_url, create=False)
    assert store.current_revision() == "0007"
    store.close()


def test_retention_from_config(tmp_path, make_report, monkeypatch):
    monkeypatch.delenv("DRIFTD_STORE__URL", raising=False)
    url = f"sqlite:///{tmp_path / 'driftd.db'}"
    config = tmp_path / "driftd.yaml"
    config.write_text(f"store:\n  url: {url}\n  retention_days: 30\n")
    now = datetime.now(UTC).timestamp()
    store = open_store(url)
    store.write_reports([
        make_report(window_start=now - 45 * 86_400, n_features=3),
        make_report(window_start=now - 5 * 86_400, n_features=3),
    ])
    result = invoke("retention", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "kept 30 days" in result.output
    assert "deleted 6 rows: feature_results 5, window_results 1" in result.output
    assert len(store.windows("churn")) == 1
    # --days overrides the configuration.
    result = invoke("retention", "--config", str(config), "--days", "1")
    assert result.exit_code == 0 and "window_results 1" in result.output
    assert store.windows("churn") == []
    store.close()


def test_usage_and_connection_errors(tmp_path, postgres_url):
    assert invoke("upgrade").exit_code == 2
    assert invoke("retention", "--url", "sqlite://").exit_code == 2  # no --days, no config
    bad = tmp_path / "bad.yaml"
    bad.write_text("store:\n  retention_dayz: 3\n")
    result = invoke("retention", "--config", str(bad))
    assert result.exit_code == 2 and "store.retention_dayz" in result.output
    refused = invoke("upgrade", "--url", postgres_url.replace(":5432/", ":1/"))
    assert refused.exit_code == 1 and "store unavailable" in refused.output
    assert invoke("upgrade", "--url", "nonsense").exit_code == 2


def test_retention_never_touches_recent_data(store_url, make_report):
    store = open_store(store_url)
    recent = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    store.write_reports([make_report(window_start=recent)])
    result = invoke("retention", "--url", store_url, "--days", "1")
    assert result.exit_code == 0 and "deleted 0 rows" in result.output
    assert len(store.windows("churn")) == 1
    store.close()
