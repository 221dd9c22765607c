"""The CLI a new user meets first: methods, baseline show, compare against a baseline, broker, run errors.

Commands run through typer's CliRunner (``driftd broker`` as a real process,
since it waits for a signal). Tables must fit 80 columns without cutting names;
``compare --reference baseline.json`` must decide exactly as the daemon's
pipeline decides a window of the same rows.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from detectors.registry import REGISTRY
from monitor.baseline import build_baseline
from monitor.baselines import BaselineRegistry
from monitor.cli import app
from monitor.cli_tables import fmt
from monitor.config import load_settings
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.simulate import Scenario, training_frame

DRIFTD = Path(sys.executable).with_name("driftd")
SCENARIO = Scenario(model="credit", version="v1", seed=5)
IMPORTANCES = {
    "num_0": 0.40,
    "num_1": 0.25,
    "num_2": 0.15,
    "num_3": 0.1,
    "num_4": 0.05,
    "num_5": 0.03,
    "cat_0": 0.01,
    "cat_1": 0.01,
}


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    frame = training_frame(SCENARIO, n=6_000)
    frame.to_csv(root / "train.csv", index=False)
    baseline = build_baseline(
        frame,
        "credit",
        "v1",
        target="target",
        prediction="prediction",
        score="score",
        importances=IMPORTANCES,
        source="train.csv",
    )
    baseline.save(root / "credit-v1.json")
    current = training_frame(Scenario(model="credit", version="v1", seed=6), n=3_000)
    current["num_0"] = current["num_0"] + 1.0
    current.to_csv(root / "today.csv", index=False)
    return {
        "train": root / "train.csv",
        "baseline": root / "credit-v1.json",
        "current": root / "today.csv",
        "root": root,
        "sha256": baseline.sha256,
    }


def test_methods_lists_every_registered_method_with_threshold_and_source() -> None:
    result = invoke("methods")
    assert result.exit_code == 0, result.output
    assert widest(result.output) <= 80
    rows = {
        line.split()[0]: line
        for line in result.output.splitlines()
        if line.split() and line.split()[0] in REGISTRY
    }
    assert set(rows) == set(REGISTRY)
    for name, spec in REGISTRY.items():
        assert fmt(spec.default_threshold) in rows[name]
        assert spec.source[:10] in rows[name]
    assert "(auto)" in rows["wasserstein"] and "(auto)" in rows["chisquare"]
    wide = invoke("methods", "--wide").output
    for spec in REGISTRY.values():
        assert spec.source in wide and spec.description in wide


def test_compare_help_lists_the_methods() -> None:
    text = re.sub(r"\s+", " ", invoke("compare", "--help").output)
    for name in REGISTRY:
        assert name in text
    assert "driftd methods" in text and "baseline JSON" in text


def test_baseline_show_prints_every_section(files) -> None:
    result = invoke("baseline", "show", str(files["baseline"]))
    assert result.exit_code == 0, result.output
    text = result.output
    assert widest(text) <= 80
    for heading in (
        "Baseline credit v1",
        "Features (8)",
        "Prediction, score and label",
        "Reference performance",
        "Reference calibration",
        "Global SHAP importances",
    ):
        assert heading in text
    assert files["sha256"][:16] in text and files["sha256"] not in text  # shortened unless --wide
    baseline = json.loads(files["baseline"].read_text())
    for metric in ("roc_auc", "accuracy", "log_loss"):
        assert re.search(rf"^{metric}\s+{baseline['performance'][metric]:.4f}$", text, re.MULTILINE), metric
    assert re.search(
        rf"^ece_equal_width\s+{baseline['calibration']['ece_equal_width']:.4f}$", text, re.MULTILINE
    )
    assert re.search(r"^num_0\s+0\.4000\s+40\.0%$", text, re.MULTILINE)  # 0.40 of 1.00 in total
    assert re.search(r"^label\s+categorical.*\b0, 1|1, 0", text, re.MULTILINE)
    wide = invoke("baseline", "show", str(files["baseline"]), "--wide").output
    assert files["sha256"] in wide and "bin at score" in wide
    only = invoke("baseline", "show", str(files["baseline"]), "--section", "performance").output
    assert "Reference performance" in only and "Features" not in only
    bad = invoke("baseline", "show", str(files["baseline"]), "--section", "novelty-typo")
    assert bad.exit_code == 2 and "allowed: summary, features" in bad.output


def _daemon_report(frame: pd.DataFrame, settings, baseline_path: Path):
    """The daemon's pipeline on the same rows as events of one window."""
    _, metrics, collector = create_metrics(10)
    baselines = BaselineRegistry(settings)
    from monitor.baseline import load_baseline

    baselines.add(load_baseline(baseline_path))
    pipeline = Pipeline(settings, metrics, collector, baselines)
    events = []
    for i, row in enumerate(frame.to_dict("records")):
        features = {k: row[k] for k in SCENARIO.numeric_names + SCENARIO.categorical_names}
        events.append(
            orjson.dumps(
                {
                    "model": "credit",
                    "model_version": "v1",
                    "prediction_id": str(i),
                    "timestamp": 1_767_225_600.0,
                    "features": features,
                    "prediction": row["prediction"],
                    "scores": {"0": 1 - row["score"], "1": row["score"]},
                }
            )
        )
    assert pipeline.process_predictions(events) == []
    (report,) = pipeline.close_all()
    return report


@pytest.mark.parametrize(
    "drift", [{}, {"thresholds": {"wasserstein": 2.0}, "correction": "bonferroni"}]
)
def test_compare_against_a_baseline_decides_like_the_daemon(
    files, tmp_path: Path, drift: dict
) -> None:
    config = tmp_path / "driftd.yaml"
    config.write_text(
        yaml.safe_dump({"drift": drift, "models": [{"name": "credit"}]}), encoding="utf-8"
    )
    result = invoke(
        "compare",
        "-r",
        str(files["baseline"]),
        "-c",
        str(files["current"]),
        "--prediction",
        "prediction",
        "--score",
        "score",
        "--target",
        "target",
        "-f",
        "json",
        "--config",
        str(config),
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    report = _daemon_report(pd.read_csv(files["current"]), load_settings(config), files["baseline"])
    ours = {(r["feature"], r["method"]): r for r in document["features"]}
    for verdict in (*report.features, *report.prediction, *report.multivariate):
        joint = verdict.feature == "__multivariate__"
        row = document["multivariate"][0] if joint else ours.get((verdict.feature, verdict.method))
        assert row is not None, verdict
        assert row["score"] == pytest.approx(verdict.score, rel=1e-12)
        assert row["drifted"] == verdict.drifted, verdict
    assert document["drifted_features"] == report.drifted_features
    assert any(
        r["feature"] == "__label__" for r in document["features"]
    )  # the daemon's label drift
    if not drift:
        assert document["drifted_features"] == ["num_0"]
        assert document["multivariate"][0]["method"] == "pca_reconstruction"
    else:  # the configuration's thresholds, as the daemon would use them
        assert document["drifted_features"] == []


def test_compare_baseline_table_fits_and_bad_input_is_status_two(files) -> None:
    result = invoke("compare", "-r", str(files["baseline"]), "-c", str(files["current"]))
    assert result.exit_code == 0, result.output
    assert (
        widest(result.output) <= 80 and "decided as `driftd run` decides a window" in result.output
    )
    # The threshold shown is the effective one: the configured 0.1 or the noise floor at this n.
    shown = re.search(r"^num_0\s+wasserstein\s+\S+\s+\S+\s+(\d\.\d{4})\s+DRIFT$", result.output, re.MULTILINE)
    assert shown and float(shown.group(1)) >= 0.1
    narrow = files["root"] / "narrow.csv"
    pd.read_csv(files["current"])[["num_0"]].to_csv(narrow, index=False)
    missing = invoke("compare", "-r", str(files["baseline"]), "-c", str(narrow))
    assert (
        missing.exit_code == 2
        and "missing from the current file: " in missing.output
        and "num_1" in missing.output
    )


def test_file_compare_defaults_to_the_daemons_multivariate_and_scores(files) -> None:
    base = ["compare", "-r", str(files["train"]), "-c", str(files["current"]), "-f", "json"]
    document = json.loads(invoke(*base, "--score", "score").stdout)
    assert [m["method"] for m in document["multivariate"]] == ["pca_reconstruction"]
    assert any(r["feature"] == "__prediction_score__" for r in document["features"])
    assert json.loads(invoke(*base, "--multivariate", "none").stdout)["multivariate"] == []
    bad = invoke(*base, "--multivariate", "psi")
    assert (
        bad.exit_code == 2 and "allowed: none, domain_classifier, pca_reconstruction" in bad.output
    )


def test_compare_table_fits_80_columns_without_cutting_names_and_wide_shows_all(
    files, tmp_path: Path
) -> None:
    frame = pd.read_csv(files["current"]).rename(columns={"num_5": "customer_tenure_in_months"})
    reference = pd.read_csv(files["train"]).rename(columns={"num_5": "customer_tenure_in_months"})
    frame.to_csv(tmp_path / "cur.csv", index=False)
    reference.to_csv(tmp_path / "ref.csv", index=False)
    args = [
        "compare",
        "-r",
        str(tmp_path / "ref.csv"),
        "-c",
        str(tmp_path / "cur.csv"),
        "-m",
        "auto",
        "-m",
        "domain_classifier",
        "--prediction",
        "prediction",
        "--score",
        "score",
    ]
    text = invoke(*args).output
    assert widest(text) <= 80
    for name in (
        "customer_tenure_in_months",
        "__prediction_score__",
        "pca_reconstruction",
        "domain_classifier",
        "wasserstein",
        "chisquare",
    ):
        assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", text, re.MULTILINE), name
    wide = invoke(*args, "--wide").output
    assert "p corrected" in wide and "missing ref / cur" in wide and "numeric" in wide


def test_broker_prints_its_address_and_stops_on_sigterm_and_ctrl_c() -> None:
    from kafka import KafkaConsumer, KafkaProducer

    for stop in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen(
            [str(DRIFTD), "broker", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            first = process.stdout.readline()
            match = re.match(r"broker listening on (127\.0\.0\.1:(\d+))", first)
            assert match, first + process.stderr.read()
            bootstrap, port = match.group(1), int(match.group(2))
            producer = KafkaProducer(bootstrap_servers=bootstrap)
            producer.send("hello", b"world").get(timeout=30)
            producer.close()
            consumer = KafkaConsumer(
                "hello",
                bootstrap_servers=bootstrap,
                auto_offset_reset="earliest",
                consumer_timeout_ms=20_000,
                group_id=None,
            )
            assert [m.value for m in consumer][:1] == [b"world"]
            consumer.close()
            process.send_signal(stop)
            out, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        assert process.returncode == 0 and "broker stopped" in out
        with pytest.raises(OSError):  # the broker process is gone with it
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _config(tmp_path: Path, **model) -> Path:
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": "credit", **model}]}), encoding="utf-8")
    return path


def test_run_refuses_a_missing_baseline_file_naming_the_key(tmp_path: Path) -> None:
    result = invoke("run", "--config", str(_config(tmp_path, baseline="baselines/nope.json")))
    assert result.exit_code == 2
    assert (
        f"models[credit].baseline: file {tmp_path / 'baselines' / 'nope.json'} does not exist"
        in result.output
    )
    assert "driftd baseline build" in result.output


def test_run_refuses_a_positive_class_the_labels_do_not_contain(files, tmp_path: Path) -> None:
    result = invoke(
        "run",
        "--config",
        str(_config(tmp_path, baseline=str(files["baseline"]), positive_class="yes")),
    )
    assert result.exit_code == 2
    assert (
        "models[credit].positive_class: 'yes' is not a class of the baseline's labels"
        in result.output
    )
    assert "'0'" in result.output and "'1'" in result.output


def test_run_and_demo_refuse_an_unknown_log_format(tmp_path: Path) -> None:
    for command in (
        ["run", "--config", str(_config(tmp_path))],
        ["demo", "--workdir", str(tmp_path / "d")],
    ):
        result = invoke(*command, "--log-format", "xml")
        assert result.exit_code == 2 and "allowed: text, json" in result.output
        assert not (tmp_path / "d").exists()  # refused before anything started
