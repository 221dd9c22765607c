"""A first configuration for your own model: examples/driftd.yaml, ``driftd init``, and
``driftd init`` then ``driftd run`` on a freshly generated CSV against the real broker."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from monitor.baseline import load_baseline
from monitor.cli import app
from monitor.config import Settings, load_settings
from tests.realstack import driftd_process, free_port, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "driftd.yaml"
WINDOW = 60


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DRIFTD_"):
            monkeypatch.delenv(name)


def test_the_example_loads_and_names_every_key() -> None:
    settings = load_settings(EXAMPLE)
    assert [m.name for m in settings.models] == ["churn", "house-prices"]
    text = EXAMPLE.read_text()
    content = yaml.safe_load(text)
    assert set(content) == set(Settings.model_fields)  # every section
    for section, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            for key in annotation.model_fields:  # every key, set or commented out
                assert re.search(rf"^\s*#?\s*{key}:", text, re.M), f"{section}.{key}"


def _training_csv(path: Path, n: int = 3000, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    tenure = rng.integers(0, 60, n)
    score = 1 / (1 + np.exp(-(age - 40) / 8 + 0.02 * tenure))
    churned = (rng.random(n) < score).astype(int)
    pd.DataFrame({"customer_id": np.arange(n), "age": age.round(2), "plan": plan,
                  "tenure": tenure, "churned": churned, "predicted": (score > 0.5).astype(int),
                  "p_churn": score.round(4)}).to_csv(path, index=False)
    return path


def _init(tmp_path: Path, *extra: str) -> object:
    return CliRunner().invoke(app, [
        "init", "--model", "churn", "--data", str(tmp_path / "train.csv"), "--target", "churned",
        "--prediction", "predicted", "--score", "p_churn", "--drop", "customer_id",
        "--out", str(tmp_path / "driftd.yaml"), *extra])


def test_init_writes_a_loadable_config_and_the_baseline(tmp_path: Path) -> None:
    _training_csv(tmp_path / "train.csv")
    result = _init(tmp_path)
    assert result.exit_code == 0, result.output
    settings = load_settings(tmp_path / "driftd.yaml")
    model = settings.model("churn")
    assert model is not None and model.task == "binary"
    baseline = load_baseline(model.baseline)
    assert sorted(baseline.features) == ["age", "plan", "tenure"]
    assert baseline.features["plan"].kind == "categorical" and baseline.performance
    assert "driftd run --config" in result.output
    again = _init(tmp_path)  # never overwrites silently
    assert again.exit_code == 2 and "--force" in again.output
    assert _init(tmp_path, "--force").exit_code == 0


def test_init_names_the_bad_column(tmp_path: Path) -> None:
    _training_csv(tmp_path / "train.csv")
    result = CliRunner().invoke(app, ["init", "--model", "churn", "--data",
                                      str(tmp_path / "train.csv"), "--target", "churn",
                                      "--out", str(tmp_path / "driftd.yaml")])
    assert result.exit_code == 2 and "--target 'churn': no such column" in result.output
    assert not (tmp_path / "driftd.yaml").exists()


def _events(start: float, n: int, seed: int, shift: float) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        age = float(rng.normal(40 + shift, 10))
        score = float(1 / (1 + np.exp(-(age - 40) / 8)))
        out.append({"model": "churn", "model_version": "v1", "prediction_id": f"p{seed}-{i}",
                    "timestamp": start + i * WINDOW / n,
                    "features": {"age": age, "plan": str(rng.choice(["basic", "pro", "team"])),
                                 "tenure": int(rng.integers(0, 60))},
                    "prediction": int(score > 0.5), "scores": {"0": 1 - score, "1": score}})
    return out


@pytest.mark.integration
def test_init_then_run_produces_windows(tmp_path: Path, kafka_bootstrap: str,
                                        topic_prefix: str) -> None:
    from kafka import KafkaProducer

    _training_csv(tmp_path / "train.csv")
    port = free_port()
    result = _init(tmp_path, "--bootstrap-servers", kafka_bootstrap, "--topic-prefix",
                   topic_prefix, "--window-seconds", str(WINDOW), "--port", str(port))
    assert result.exit_code == 0, result.output
    # Only what a test machine needs differently (short group timeouts) comes from the
    # environment; the rest is the file `driftd init` wrote.
    env = {"DRIFTD_KAFKA__MAX_POLL_INTERVAL_MS": "3000", "DRIFTD_KAFKA__SESSION_TIMEOUT_MS": "6000",
           "DRIFTD_KAFKA__HEARTBEAT_INTERVAL_MS": "1000", "DRIFTD_CHECKPOINT__INTERVAL_SECONDS": "1"}
    start = (time.time() // WINDOW - 6) * WINDOW
    with driftd_process(tmp_path / "driftd.yaml", port=port, env=env,
                        startup_timeout=120) as daemon:
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=10)
        try:
            for window in range(4):
                for event in _events(start + window * WINDOW, 300, seed=window,
                                     shift=0.0 if window < 2 else 15.0):
                    producer.send(f"{topic_prefix}.predictions", orjson.dumps(event), key=b"churn")
            producer.flush(timeout=10)
        finally:
            producer.close(timeout=5)

        def closed() -> float:
            for line in daemon.metrics_text().splitlines():
                if line.startswith('driftd_windows_closed_total{model="churn"}'):
                    return float(line.split()[-1])
            return 0.0

        wait_until(lambda: closed() >= 3, timeout=90, interval=1, what="three closed windows")
        metrics = daemon.metrics_text()
    drifted = [line for line in metrics.splitlines()
               if line.startswith("driftd_feature_drifted{") and 'feature="age"' in line]
    assert drifted and float(drifted[0].split()[-1]) == 1.0, drifted
    assert (tmp_path / "driftd.db").exists()
