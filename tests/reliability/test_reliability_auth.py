"""Bearer tokens on the daemon's write path: forged alerts are refused, the token is
checked in constant time, a non-loopback bind needs a token (or ``--insecure``), and
configuration errors name the key without showing the token."""

from __future__ import annotations

import http.client
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from monitor.auth import BearerAuth, require_token, resolve_token
from monitor.cli import app
from monitor.config import ConfigError, Settings, load_settings
from monitor.daemon import Daemon
from monitor.store import open_store
from monitor.store.schema import IncidentRow

TOKEN = "0123456789abcdef-daemon-token"


def alert_payload(name: str = "DriftdModelDrift", fingerprint: str = "a1b2c3") -> bytes:
    return orjson.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "driftd-incidents",
            "alerts": [
                {
                    "status": "firing",
                    "fingerprint": fingerprint,
                    "labels": {"alertname": name, "severity": "critical", "model": "churn"},
                    "annotations": {"summary": "forged?"},
                    "startsAt": "2026-12-01T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                }
            ],
        }
    )


def post(
    port: int, path: str, body: bytes, token: str | None = None, scheme: str = "Bearer"
) -> tuple[int, dict, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, orjson.loads(response.read() or b"{}"), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def get(port: int, path: str, token: str | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(
            "GET", path, headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture
def daemon(tmp_path: Path):
    settings = Settings(
        http={"host": "127.0.0.1", "port": 0, "auth": {"token": TOKEN, "metrics": True}},
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
        kafka={"bootstrap_servers": "127.0.0.1:1"},
    )
    open_store(settings.store.url).close()  # migrated before the writer starts
    running = Daemon(settings)
    running.http.start()
    yield running
    running.http.stop()
    running.writer.close()
    running.store.close()


def incidents(daemon: Daemon) -> int:
    with daemon.store.session() as session:
        return session.scalar(select(func.count()).select_from(IncidentRow))


def test_a_forged_alert_without_the_token_is_refused(daemon: Daemon) -> None:
    port = daemon.http.port
    for token, scheme in (
        (None, "Bearer"),
        ("wrong-token-0123456789", "Bearer"),
        (TOKEN, "Basic"),
        (TOKEN[:-1], "Bearer"),
        (TOKEN + "x", "Bearer"),
    ):
        status, body, headers = post(port, "/api/v1/alerts", alert_payload(), token, scheme)
        assert status == 401, (token, scheme)
        assert body["error"] == "unauthorized"
        assert headers["www-authenticate"].startswith("Bearer")
        assert TOKEN not in str(body)
    assert incidents(daemon) == 0
    status, body, _ = post(port, "/api/v1/alerts", alert_payload(), TOKEN)
    assert status == 200 and len(body["incidents"]) == 1
    assert incidents(daemon) == 1
    # Lower-case scheme is the same scheme (RFC 7235).
    assert post(port, "/api/v1/alerts", alert_payload(fingerprint="ff"), TOKEN, "bearer")[0] == 200


def test_metrics_need_the_token_when_configured_and_probes_never(daemon: Daemon) -> None:
    port = daemon.http.port
    assert get(port, "/metrics") == 401
    assert get(port, "/metrics", TOKEN) == 200
    assert get(port, "/healthz") in (200, 503)  # open to the orchestrator's probes
    assert get(port, "/readyz") in (200, 503)
    assert get(port, "/nope") == 404


def test_bearer_auth_compares_whole_tokens() -> None:
    auth = BearerAuth(TOKEN)
    assert auth.allows(f"Bearer {TOKEN}") and auth.allows(f"Bearer {TOKEN}".encode())
    assert (
        not auth.allows(f"Bearer  {TOKEN}x") and not auth.allows("Bearer") and not auth.allows("")
    )
    assert not auth.allows(f"Token {TOKEN}") and not auth.allows(TOKEN)
    assert TOKEN not in repr(auth)
    assert BearerAuth(None).allows(None)  # loopback without a token: open, as before


def test_non_loopback_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    settings = Settings(
        http={"host": "0.0.0.0", "port": 0}, store={"url": f"sqlite:///{tmp_path / 's.db'}"}
    )
    with pytest.raises(
        ConfigError, match=r"http\.host '0\.0\.0\.0'.*http\.auth\.token_file.*--insecure"
    ):
        Daemon(settings)
    for host in ("127.0.0.1", "::1", "localhost"):
        require_token(host, None, insecure=False, key="http")
    require_token("10.0.0.5", None, insecure=True, key="http")
    require_token("10.0.0.5", TOKEN, insecure=False, key="http")


def test_driftd_run_names_the_missing_token_in_one_line(
    tmp_path: Path, monkeypatch
) -> None:
    config = tmp_path / "driftd.yaml"
    config.write_text(
        f"http: {{host: 0.0.0.0, port: 0}}\nstore: {{url: 'sqlite:///{tmp_path / 's.db'}'}}\n"
    )
    result = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 2
    assert "http.host '0.0.0.0'" in result.output and "--insecure" in result.output
    assert "Traceback" not in result.output


def test_token_settings_are_validated_naming_the_key(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "driftd.yaml"
    config.write_text("http: {auth: {token: short}}\n")
    with pytest.raises(ConfigError) as short:
        load_settings(config)
    assert "http.auth" in str(short.value) and "16 to 4096 characters" in str(short.value)
    assert "short" not in str(short.value).replace("shorter", "")
    config.write_text(f"http: {{auth: {{token: {TOKEN}, token_file: t}}}}\n")
    with pytest.raises(ConfigError, match="token or token_file, not both"):
        load_settings(config)
    assert TOKEN not in repr(Settings(http={"auth": {"token": TOKEN}}))
    # token_file: relative to the configuration file, read at start, checked.
    config.write_text("http: {auth: {token_file: secrets/token}}\n")
    settings = load_settings(config)
    with pytest.raises(ValueError, match=r"http\.auth\.token_file: cannot read .*secrets/token"):
        resolve_token(settings.http.auth, "http.auth")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(TOKEN + "\n")
    assert resolve_token(settings.http.auth, "http.auth") == TOKEN
    (tmp_path / "secrets" / "token").write_text("has spaces in the token file\n")
    with pytest.raises(ValueError, match="printable ASCII without spaces"):
        resolve_token(settings.http.auth, "http.auth")
    monkeypatch.setenv("DRIFTD_SIDECAR__AUTH__TOKEN", TOKEN)
    assert resolve_token(load_settings(None).sidecar.auth, "sidecar.auth") == TOKEN
