"""``driftd dashboards push`` against a local server speaking Grafana's documented API."""

from __future__ import annotations

import os
import socket
import time

import pytest
from tests.dashboards.dashboards_fake_grafana import fake_grafana
from typer.testing import CliRunner

from dashboards.build import FOLDER_UID, build_dashboards
from dashboards.errors import GrafanaAuthError, GrafanaUnreachableError
from dashboards.push import push_dashboards
from monitor.cli import app
from monitor.config import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DRIFTD_") or name == "GRAFANA_TOKEN":
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def models() -> list[dict]:
    return build_dashboards(Settings())


def test_push_creates_the_folder_then_overwrites_dashboards(models: list[dict]) -> None:
    with fake_grafana() as grafana:
        pushed = push_dashboards(models, grafana.url, "editor-token", folder_uid=FOLDER_UID,
                                 folder_title="driftd")
        again = push_dashboards(models, grafana.url, "editor-token", folder_uid=FOLDER_UID,
                                folder_title="driftd")
    assert grafana.violations == []
    calls = [(method, path) for method, path, _ in grafana.requests]
    first = [("GET", "/api/folders/driftd"), ("POST", "/api/folders")] + [
        ("POST", "/api/dashboards/db")] * 3
    second = [("GET", "/api/folders/driftd")] + [("POST", "/api/dashboards/db")] * 3
    assert calls == first + second  # the folder is created once, only when absent
    assert grafana.folders["driftd"]["title"] == "driftd"
    for _, path, body in grafana.requests:
        if path == "/api/dashboards/db":
            assert body["overwrite"] is True and body["folderUid"] == "driftd"
    assert [p.url for p in pushed] == [
        f"{grafana.url}/d/driftd-overview/driftd-overview",
        f"{grafana.url}/d/driftd-model/driftd-model",
        f"{grafana.url}/d/driftd-pipeline/driftd-pipeline",
    ]
    assert [p.version for p in pushed] == [1, 1, 1] and [p.version for p in again] == [2, 2, 2]
    stored = grafana.dashboards["driftd-model"]["dashboard"]
    assert stored["panels"] == models[1]["panels"]  # uploaded unchanged


def test_push_command_reads_the_token_from_the_environment(tmp_path) -> None:
    runner = CliRunner()
    with fake_grafana() as grafana:
        result = runner.invoke(app, ["dashboards", "push", "--grafana-url", grafana.url],
                               env={"GRAFANA_TOKEN": "editor-token"})
        flag = runner.invoke(app, ["dashboards", "push", "--grafana-url", grafana.url,
                                   "--token", "editor-token"])
    assert result.exit_code == 0, result.output
    assert f"{grafana.url}/d/driftd-overview/driftd-overview" in result.output
    assert result.output.count("/d/driftd-") == 3
    # There is no way to pass the token as a flag (it would land in shell history).
    assert flag.exit_code == 2 and "No such option" in flag.output


def test_push_command_defaults_to_the_configured_grafana_url(tmp_path) -> None:
    with fake_grafana() as grafana:
        config = tmp_path / "driftd.yaml"
        config.write_text(f"alerts:\n  grafana_url: {grafana.url}\n")
        result = CliRunner().invoke(app, ["dashboards", "push", "--config", str(config)],
                                    env={"GRAFANA_TOKEN": "editor-token"})
    assert result.exit_code == 0, result.output
    assert len(grafana.dashboards) == 3


@pytest.mark.parametrize(("token", "status", "words"), [
    ("wrong-token", 401, "missing, expired or wrong"),
    ("viewer-token", 403, "lacks permission"),
])
def test_auth_failures_are_clear(models: list[dict], token: str, status: int, words: str) -> None:
    with fake_grafana() as grafana:
        with pytest.raises(GrafanaAuthError) as caught:
            push_dashboards(models, grafana.url, token, folder_uid=FOLDER_UID, folder_title="driftd")
        result = CliRunner().invoke(app, ["dashboards", "push", "--grafana-url", grafana.url],
                                    env={"GRAFANA_TOKEN": token})
    message = str(caught.value)
    assert f"HTTP {status}" in message and words in message and "GRAFANA_TOKEN" in message
    assert token not in message  # never echo the secret
    assert result.exit_code == 1
    assert f"HTTP {status}" in result.output and "Traceback" not in result.output
    assert grafana.dashboards == {}


def test_missing_token_fails_before_any_request(models: list[dict]) -> None:
    with fake_grafana() as grafana:
        result = CliRunner().invoke(app, ["dashboards", "push", "--grafana-url", grafana.url])
    assert result.exit_code == 1 and "GRAFANA_TOKEN" in result.output
    assert grafana.requests == []


def test_unreachable_grafana_is_a_clear_error(models: list[dict]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(GrafanaUnreachableError) as caught:
        push_dashboards(models, f"http://127.0.0.1:{port}", "editor-token", folder_uid=FOLDER_UID,
                        folder_title="driftd", timeout=3)
    assert f"cannot reach Grafana at http://127.0.0.1:{port}" in str(caught.value)
    assert time.monotonic() - started < 10
    result = CliRunner().invoke(app, ["dashboards", "push", "--grafana-url",
                                      f"http://127.0.0.1:{port}", "--timeout", "3"],
                                env={"GRAFANA_TOKEN": "editor-token"})
    assert result.exit_code == 1 and "cannot reach Grafana" in result.output
