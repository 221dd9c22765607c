"""A real Alertmanager delivers to driftd's token-protected receiver with the config
``driftd rules alertmanager`` generates (``credentials_file`` from ``http.auth``);
without the credentials its deliveries are refused and no incident is recorded."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.store import open_store
from monitor.store.schema import IncidentRow
from tests.realstack import alertmanager, free_port, wait_until, webhook_receiver

pytestmark = pytest.mark.integration

TOKEN = "alertmanager-token-0123456789abcdef"


def _post_alert(url: str, name: str) -> None:
    alert = {
        "labels": {"alertname": name, "severity": "critical", "job": "driftd", "model": "churn"},
        "annotations": {"summary": name},
    }
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps([alert]).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _fast(config_path: Path, *, drop_credentials: bool = False) -> dict:
    config = yaml.safe_load(config_path.read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    if drop_credentials:
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook.pop("http_config", None)
    return config


def _alertnames(store_url: str) -> set[str]:
    store = open_store(store_url, create=False)
    try:
        with store.session() as session:
            return set(session.scalars(select(IncidentRow.alertname)))
    finally:
        store.close()


def test_alertmanager_delivers_to_the_authenticated_receiver(
    tmp_path: Path, alertmanager_bin: str
) -> None:
    token_file = tmp_path / "driftd-token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    config = tmp_path / "driftd.yaml"
    config.write_text(
        f"http: {{host: 127.0.0.1, port: {port}, auth: {{token_file: driftd-token}}}}\n"
        f"store: {{url: '{store_url}'}}\nkafka: {{bootstrap_servers: '127.0.0.1:1'}}\n"
    )
    out = tmp_path / "alertmanager.yml"
    result = CliRunner().invoke(
        app,
        [
            "rules",
            "alertmanager",
            "--config",
            str(config),
            "--out",
            str(out),
            "--pager-url",
            "http://127.0.0.1:1/pager",
            "--ticket-url",
            "http://127.0.0.1:1/ticket",
        ],
    )
    assert result.exit_code == 0, result.output
    generated = yaml.safe_load(out.read_text())
    (incidents,) = [r for r in generated["receivers"] if r["name"] == "driftd-incidents"]
    assert incidents["webhook_configs"][0]["http_config"] == {
        "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
    }
    assert TOKEN not in out.read_text()

    open_store(store_url).close()
    daemon = Daemon(load_settings(config))
    daemon.http.start()
    try:
        with webhook_receiver() as pager:
            # Without the credentials: delivered (the pager sees it) but refused by driftd.
            no_credentials = _fast(out, drop_credentials=True)
            for receiver in no_credentials["receivers"]:
                if receiver["name"] == "pager":
                    receiver["webhook_configs"][0]["url"] = pager.url
            with alertmanager(no_credentials) as am:
                _post_alert(am.url, "DriftdModelDrift")
                pager.wait_for_alert("DriftdModelDrift", timeout=20)
                time.sleep(2)  # driftd's receiver is notified in parallel with the pager
            assert _alertnames(store_url) == set()
            # The generated configuration, as written: the incident is recorded.
            with alertmanager(_fast(out)) as am:
                _post_alert(am.url, "DriftdPredictionDrift")
                wait_until(
                    lambda: "DriftdPredictionDrift" in _alertnames(store_url),
                    20,
                    what="the incident recorded through the authenticated receiver",
                )
    finally:
        daemon.http.stop()
        daemon.writer.close()
        daemon.store.close()
