"""Configuration: YAML plus DRIFTD_* overrides, errors that name key, value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "driftd.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load_without_a_file() -> None:
    settings = load_settings(None)
    assert settings.windows.size_seconds == 300
    assert settings.drift.correction == "bh"
    assert settings.kafka.security_protocol == "PLAINTEXT"


def test_yaml_values_and_relative_paths(tmp_path: Path) -> None:
    path = write(tmp_path, "windows:\n  size_seconds: 60\nmodels:\n  - name: credit\n    baseline: b/credit.json\n")
    settings = load_settings(path)
    assert settings.windows.size_seconds == 60
    assert settings.models[0].baseline == tmp_path / "b" / "credit.json"


def test_environment_overrides_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "kafka:\n  bootstrap_servers: from-file:9092\n")
    monkeypatch.setenv("DRIFTD_KAFKA__BOOTSTRAP_SERVERS", "from-env:9092")
    monkeypatch.setenv("DRIFTD_WINDOWS__SIZE_SECONDS", "120")
    settings = load_settings(path)
    assert settings.kafka.bootstrap_servers == "from-env:9092"
    assert settings.windows.size_seconds == 120


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "windows:\n  sise_seconds: 60\n"))
    assert "windows.sise_seconds" in str(err.value)
    assert "unknown key" in str(err.value)


def test_bad_literal_names_key_value_and_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "drift:\n  correction: holm\n"))
    message = str(err.value)
    assert "drift.correction" in message and "'holm'" in message
    assert "bonferroni" in message and "bh" in message


def test_unknown_method_lists_registry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "drift:\n  numeric_method: magic\n"))
    message = str(err.value)
    assert "drift.numeric_method" in message and "magic" in message
    assert "ks" in message and "psi" in message


def test_method_of_wrong_kind_is_refused(tmp_path: Path) -> None:
    text = "models:\n  - name: m\n    features:\n      color: {type: categorical, method: ks}\n"
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert "models[m].features.color.method" in str(err.value)


def test_duplicate_models_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="repeated"):
        load_settings(write(tmp_path, "models:\n  - name: a\n  - name: a\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "windows: [unclosed\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml")


def test_secrets_are_not_printed(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: PLAIN\n  sasl_plain_username: u\n  sasl_plain_password: hunter2\n")
    settings = load_settings(path)
    assert "hunter2" not in repr(settings)
    assert settings.kafka.client_options()["sasl_plain_password"] == "hunter2"


def test_multivariate_method_is_not_a_feature_method(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, "models:\n  - name: m\n    features:\n      age: {method: domain_classifier}\n"))
    assert "models[m].features.age.method" in str(err.value) and "multivariate" in str(err.value)
    settings = load_settings(write(tmp_path, "drift:\n  multivariate_method: domain_classifier\n  thresholds: {domain_classifier: 0.7}\n"))
    assert settings.drift.thresholds["domain_classifier"] == 0.7
