"""deploy/: the committed files are what ``driftd deploy generate`` writes now; the
Kubernetes objects validate against the Kubernetes schemas (kubernetes-validate,
strict) and the prometheus-operator CRD schemas; the compose file against the compose
specification; Prometheus and Alertmanager accept the configurations they carry."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft7Validator
from typer.testing import CliRunner

from alerts.catalogue import RuleOptions
from alerts.rules import rule_groups
from alerts.tools import amtool_check_config, promtool_check_rules
from dashboards.build import build_dashboards
from dashboards.deploy import deploy_files, load_documents
from monitor.cli import app
from monitor.config import load_settings
from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLE = ROOT / "examples" / "driftd.yaml"
SCHEMAS = Path(__file__).parent / "schemas"
K8S_VERSIONS = ("1.29.0", "1.33.0")
BUILTIN_KINDS = {"ConfigMap", "Deployment", "Service"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DRIFTD_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("DRIFTD_"):
            del os.environ[name]
    return deploy_files(load_settings(EXAMPLE), EXAMPLE.read_text())


@pytest.fixture(scope="module")
def objects(generated: dict[str, str]) -> list[dict[str, Any]]:
    return [doc for name, text in generated.items()
            if name.startswith("kubernetes/") and name != "kubernetes/kustomization.yaml"
            for doc in load_documents(text)]


def _by(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_committed_deploy_files_are_what_the_generator_writes(generated, tmp_path) -> None:
    committed = {str(p.relative_to(DEPLOY)): p.read_text() for p in DEPLOY.rglob("*") if p.is_file()}
    assert sorted(committed) == sorted(generated)
    stale = [name for name, text in generated.items() if committed[name] != text]
    assert stale == [], f"regenerate: driftd deploy generate --config examples/driftd.yaml --out deploy/ ({stale})"
    result = CliRunner().invoke(app, ["deploy", "generate", "--config", str(EXAMPLE), "--out",
                                      str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kubernetes" / "driftd.yaml").read_text() == generated["kubernetes/driftd.yaml"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_builtin_objects_validate_against_the_kubernetes_schemas(objects, version) -> None:
    kinds = set()
    for obj in objects:
        if obj["kind"] in BUILTIN_KINDS:
            kubernetes_validate.validate(obj, version, strict=True)
            kinds.add(obj["kind"])
    assert kinds == BUILTIN_KINDS


def test_kubernetes_validate_is_not_vacuous(objects) -> None:
    deployment = copy.deepcopy(_by(objects, "Deployment", "driftd"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused, as the API server's strict field validation does."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_validator(kind: str) -> Draft7Validator:
    data = json.loads((SCHEMAS / f"{kind.lower()}-v1.json").read_text())
    assert data["kind"] == kind and data["group"] == "monitoring.coreos.com"
    return Draft7Validator(_strict(data["schema"]))


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PrometheusRule"])
def test_crd_objects_validate_against_the_published_crd_schemas(objects, kind) -> None:
    validator = _crd_validator(kind)
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(found[0])]
    assert errors == []
    broken = copy.deepcopy(found[0])
    broken["spec"]["unknownField"] = 1
    assert list(validator.iter_errors(broken)), "the strict CRD schema accepts anything"


def test_the_daemon_is_probed_scraped_and_alerted_on(objects) -> None:
    settings = load_settings(EXAMPLE)
    options = RuleOptions.from_settings(settings)
    container = _by(objects, "Deployment", "driftd")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["run", "--config", "/etc/driftd/driftd.yaml"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    service = _by(objects, "Service", options.job)  # the Prometheus job is the Service name
    monitor = _by(objects, "ServiceMonitor", "driftd")
    labels = service["metadata"]["labels"]
    assert all(labels[k] == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert service["spec"]["selector"] == _by(objects, "Deployment", "driftd")["spec"]["selector"]["matchLabels"]
    assert _by(objects, "PrometheusRule", "driftd")["spec"] == rule_groups(settings, options)


def test_dashboards_app_and_workers(objects) -> None:
    settings = load_settings(EXAMPLE)
    maps = [o for o in objects if o["kind"] == "ConfigMap"
            and o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    shipped = {k: json.loads(v) for m in maps for k, v in m["data"].items()}
    assert shipped == {f"{d['uid']}.json": d for d in build_dashboards(settings)}
    alerting = _by(objects, "ConfigMap", "driftd-grafana-alerting")
    assert alerting["metadata"]["labels"]["grafana_alert"] == "1"
    assert sorted(alerting["data"]) == ["driftd-contact-points.yaml", "driftd-policies.yaml",
                                        "driftd-rules.yaml"]
    app_args = _by(objects, "Deployment", "driftd-app")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert app_args[:3] == ["app", "--config", "/etc/driftd/driftd.yaml"]
    worker = _by(objects, "Deployment", "driftd-explain-worker")
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "explain-worker", "--config", "/etc/driftd/driftd.yaml"]
    assert _by(objects, "ConfigMap", "driftd-config")["data"]["driftd.yaml"] == EXAMPLE.read_text()


def test_kustomization_lists_every_manifest(generated) -> None:
    kustomization = yaml.safe_load(generated["kubernetes/kustomization.yaml"])
    files = {n.removeprefix("kubernetes/") for n in generated if n.startswith("kubernetes/")}
    assert set(kustomization["resources"]) == files - {"kustomization.yaml"}


def test_compose_file_validates_against_the_compose_specification(generated) -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    compose = yaml.safe_load(generated["compose/docker-compose.yml"])
    errors = [f"{e.json_path}: {e.message}" for e in Draft7Validator(schema).iter_errors(compose)]
    assert errors == []
    assert set(compose["services"]) == {"broker", "postgres", "driftd", "app", "prometheus",
                                        "alertmanager", "grafana"}
    broken = copy.deepcopy(compose)
    broken["services"]["driftd"]["depends_on"] = {"broker": {"condition": "healthy"}}
    assert list(Draft7Validator(schema).iter_errors(broken))
    # Every file the stack mounts is generated next to it.
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                local = f"compose/{source[2:]}"
                assert local in generated or any(n.startswith(local + "/") for n in generated), volume
    assert compose["services"]["driftd"]["build"]["dockerfile"] == "deploy/Dockerfile"


@pytest.mark.integration
def test_prometheus_and_alertmanager_accept_the_stacks_configuration(generated, tmp_path) -> None:
    promtool = require_binary("promtool")
    amtool = require_binary("amtool")
    for name, text in generated.items():
        if name.startswith("compose/"):
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    config = tmp_path / "compose" / "prometheus.yml"
    checked = subprocess.run([promtool, "check", "config", "--syntax-only", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in promtool_check_rules([tmp_path / "compose" / "rules" / "driftd.rules.yml"],
                                             promtool)
    amtool_check_config(tmp_path / "compose" / "alertmanager.yml", amtool)
    rule_file = tmp_path / "operator-rules.yml"
    rule_file.write_text(yaml.safe_dump(next(d for d in load_documents(
        generated["kubernetes/monitoring.yaml"]) if d["kind"] == "PrometheusRule")["spec"]))
    assert "SUCCESS" in promtool_check_rules([rule_file], promtool)
