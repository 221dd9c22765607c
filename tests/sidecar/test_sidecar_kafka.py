"""Events logged through the client and through HTTP arrive on the real broker unchanged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.broker import free_port
from monitor.sidecar import PredictionLogger
from tests.sidecar.sidecar_support import label_event, prediction_event, read_topic, running_sidecar

pytestmark = pytest.mark.integration


def _logger(bootstrap: str, prefix: str, **options) -> PredictionLogger:
    return PredictionLogger(bootstrap_servers=bootstrap, predictions_topic=f"{prefix}.predictions",
                            labels_topic=f"{prefix}.labels", **options)


def _metrics(text: str) -> dict[str, float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_client_events_arrive_unchanged(kafka_bootstrap: str, topic_prefix: str) -> None:
    predictions = [prediction_event(i) for i in range(300)]
    labels = [label_event(i) for i in range(0, 300, 3)]
    with _logger(kafka_bootstrap, topic_prefix) as logger:
        for event in predictions:
            assert logger.log_prediction(**event)
        for event in labels:
            assert logger.log_label(**event)
        assert logger.flush(timeout=30)
        stats = logger.stats()
        assert logger.ready
    assert (stats.accepted, stats.sent, stats.dropped, stats.buffered) == (400, 400, 0, 0)
    assert sum(stats.latency_counts) >= 1

    got = read_topic(kafka_bootstrap, f"{topic_prefix}.predictions", expected=300)
    assert sorted((v for _, v in got), key=lambda v: v["prediction_id"]) == sorted(
        predictions, key=lambda v: v["prediction_id"])
    assert all(key == value["prediction_id"].encode() for key, value in got)
    got_labels = read_topic(kafka_bootstrap, f"{topic_prefix}.labels", expected=100)
    assert sorted((v for _, v in got_labels), key=lambda v: v["prediction_id"]) == sorted(
        labels, key=lambda v: v["prediction_id"])


def test_http_events_arrive_unchanged_and_invalid_ones_are_rejected(kafka_bootstrap: str, topic_prefix: str) -> None:
    logger = _logger(kafka_bootstrap, topic_prefix)
    singles = [prediction_event(i, model="fraud") for i in range(20)]
    batch = [prediction_event(i, model="fraud") for i in range(20, 220)]
    bad = [prediction_event(i, model="fraud") for i in range(220, 225)]
    bad[1] = {**bad[1], "model": ""}
    bad[3] = {**bad[3], "timestamp": "not a time"}
    labels = [label_event(i, model="fraud") for i in range(50)]
    try:
        with running_sidecar(logger) as url, httpx.Client(base_url=url, timeout=10) as client:
            for event in singles:
                response = client.post("/v1/predictions", json=event)
                assert (response.status_code, response.json()) == (202, {"accepted": 1})
            assert client.post("/v1/predictions", json=batch).json() == {"accepted": 200}
            assert client.post("/v1/labels", json=labels).json() == {"accepted": 50}

            response = client.post("/v1/predictions", json=[*bad, 7])
            assert response.status_code == 400
            body = response.json()
            assert body["accepted"] == 3 and body["rejected"] == 3
            assert [(e["index"], e["reason"]) for e in body["errors"]] == [
                (1, "schema"), (3, "bad_timestamp"), (5, "schema")]
            assert "'model'" in body["errors"][0]["detail"]

            not_json = client.post("/v1/labels", content=b"{nope")
            assert (not_json.status_code, not_json.json()["error"]) == (400, "not_json")

            assert logger.flush(timeout=30)
            assert client.get("/readyz").json() == {"ready": True, "buffered": 0, "capacity": 100_000}
            assert client.get("/healthz").status_code == 200
            metrics = _metrics(client.get("/metrics").text)
    finally:
        logger.close(timeout=10)

    assert metrics["driftd_sidecar_events_accepted_total"] == 273
    assert metrics["driftd_sidecar_events_sent_total"] == 273
    assert metrics["driftd_sidecar_events_rejected_total{reason=schema}"] == 2
    assert metrics["driftd_sidecar_events_rejected_total{reason=bad_timestamp}"] == 1
    assert metrics["driftd_sidecar_events_rejected_total{reason=not_json}"] == 1
    assert metrics["driftd_sidecar_buffer_fill_ratio"] == 0
    assert metrics["driftd_sidecar_kafka_ready"] == 1
    assert metrics["driftd_sidecar_send_latency_seconds_count"] >= 1
    assert metrics["driftd_sidecar_http_requests_total{code=202,path=/v1/predictions}"] == 21

    expected = singles + batch + [bad[0], bad[2], bad[4]]
    got = read_topic(kafka_bootstrap, f"{topic_prefix}.predictions", expected=len(expected))
    assert sorted((v for _, v in got), key=lambda v: v["prediction_id"]) == sorted(
        expected, key=lambda v: v["prediction_id"])
    got_labels = read_topic(kafka_bootstrap, f"{topic_prefix}.labels", expected=50)
    assert sorted(v["prediction_id"] for _, v in got_labels) == sorted(e["prediction_id"] for e in labels)


def test_sidecar_command_delivers_its_buffer_on_sigterm(kafka_bootstrap: str, topic_prefix: str, tmp_path) -> None:
    port = free_port()
    config = tmp_path / "driftd.yaml"
    config.write_text(
        f"kafka:\n  bootstrap_servers: {kafka_bootstrap}\n"
        f"  predictions_topic: {topic_prefix}.predictions\n  labels_topic: {topic_prefix}.labels\n"
    )
    # The command itself, without importing every other sub-command of `driftd`.
    command = [sys.executable, "-c", "import typer; from monitor.sidecar.cli import sidecar; typer.run(sidecar)",
               "--port", str(port), "--config", str(config), "--log-level", "info"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    events = [prediction_event(i, model="cli") for i in range(500)]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "sidecar did not start"
            time.sleep(0.1)
        for start in range(0, 500, 100):
            assert httpx.post(f"http://127.0.0.1:{port}/v1/predictions", json=events[start:start + 100],
                              timeout=10).status_code == 202
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "sidecar stopped: 500 accepted, 500 sent, 0 undelivered" in output, output
    got = read_topic(kafka_bootstrap, f"{topic_prefix}.predictions", expected=500)
    assert sorted(v["prediction_id"] for _, v in got) == sorted(e["prediction_id"] for e in events)


def _log_in_forked_child(logger: PredictionLogger, events: list[dict]) -> None:
    ok = all(logger.log_prediction(**event) for event in events) and logger.flush(timeout=30)
    os._exit(0 if ok else 1)


def test_logger_created_before_fork_works_in_the_child(kafka_bootstrap: str, topic_prefix: str) -> None:
    import multiprocessing

    parent_events = [prediction_event(i, model="parent") for i in range(20)]
    child_events = [prediction_event(i, model="child") for i in range(20)]
    with _logger(kafka_bootstrap, topic_prefix) as logger:
        assert logger.log_prediction(**parent_events[0]) and logger.flush(timeout=30)
        child = multiprocessing.get_context("fork").Process(target=_log_in_forked_child,
                                                            args=(logger, child_events))
        child.start()
        child.join(timeout=60)
        assert child.exitcode == 0
        for event in parent_events[1:]:
            assert logger.log_prediction(**event)
        assert logger.flush(timeout=30)
        assert logger.stats().sent == 20  # the child's events are the child's
    got = read_topic(kafka_bootstrap, f"{topic_prefix}.predictions", expected=40)
    assert sorted(v["prediction_id"] for _, v in got) == sorted(e["prediction_id"] for e in parent_events + child_events)
