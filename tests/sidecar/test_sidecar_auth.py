"""The sidecar's write endpoints need the bearer token when one is configured; a
non-loopback ``--host`` without a token does not start (unless ``--insecure``)."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from monitor.auth import BearerAuth
from monitor.cli import app
from monitor.sidecar import PredictionLogger
from tests.sidecar.sidecar_support import label_event, prediction_event, read_topic, running_sidecar

TOKEN = "sidecar-token-0123456789abcdef"


@pytest.mark.integration
def test_writes_without_the_token_are_refused_and_with_it_delivered(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    logger = PredictionLogger(
        bootstrap_servers=kafka_bootstrap,
        predictions_topic=f"{topic_prefix}.predictions",
        labels_topic=f"{topic_prefix}.labels",
    )
    try:
        with (
            running_sidecar(logger, auth=BearerAuth(TOKEN, metrics=True)) as url,
            httpx.Client(base_url=url, timeout=10) as client,
        ):
            for headers in (
                {},
                {"Authorization": "Bearer wrong-token-0123456789"},
                {"Authorization": f"Basic {TOKEN}"},
            ):
                for path, event in (
                    ("/v1/predictions", prediction_event(0)),
                    ("/v1/labels", label_event(0)),
                ):
                    response = client.post(path, json=event, headers=headers)
                    assert response.status_code == 401, (path, headers)
                    assert response.json()["error"] == "unauthorized"
                    assert response.headers["www-authenticate"].startswith("Bearer")
            assert client.get("/metrics").status_code == 401
            good = {"Authorization": f"Bearer {TOKEN}"}
            assert (
                client.post("/v1/predictions", json=prediction_event(1), headers=good).status_code
                == 202
            )
            assert client.post("/v1/labels", json=label_event(1), headers=good).status_code == 202
            assert client.get("/metrics", headers=good).status_code == 200
            assert client.get("/healthz").status_code == 200  # probes stay open
            assert logger.flush(timeout=30)
    finally:
        logger.close(timeout=10)
    records = read_topic(kafka_bootstrap, f"{topic_prefix}.predictions", expected=1)
    assert [value["prediction_id"] for _, value in records] == ["churn-1"]


def test_non_loopback_host_without_a_token_does_not_start(monkeypatch) -> None:
    monkeypatch.delenv("DRIFTD_SIDECAR__AUTH__TOKEN", raising=False)
    result = CliRunner().invoke(app, ["sidecar", "--host", "0.0.0.0", "--port", "9999"])
    assert result.exit_code == 2
    assert "--host '0.0.0.0'" in result.output and "sidecar.auth.token_file" in result.output
    assert "--insecure" in result.output


def test_a_slow_request_head_is_cut_off(monkeypatch) -> None:
    import socket
    import time

    from monitor.http_asgi import HeadTimeoutH11

    monkeypatch.setattr(HeadTimeoutH11, "head_timeout", 1.0)
    logger = PredictionLogger(bootstrap_servers="127.0.0.1:1")
    try:
        with running_sidecar(logger, auth=BearerAuth(TOKEN)) as url:
            port = int(url.rsplit(":", 1)[1])
            began = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\n")  # and then nothing
                assert sock.recv(4096) == b""
            assert time.monotonic() - began < 5
    finally:
        logger.close(timeout=1)
