"""Kubernetes manifests for driftd, built from the same code as the rules and dashboards.

One list of objects per file (kustomize lists the files):

* ``config.yaml``: ConfigMap ``driftd-config`` with the configuration file;
* ``driftd.yaml``: the daemon's Deployment (``/healthz`` liveness and startup,
  ``/readyz`` readiness, SIGTERM grace for the final checkpoint) and its Service;
* ``monitoring.yaml``: ServiceMonitor and PrometheusRule (prometheus-operator), the
  rule groups being :func:`alerts.rules.rule_groups`'s;
* ``dashboards.yaml``: one ConfigMap per dashboard labelled ``grafana_dashboard``
  (Grafana's dashboard sidecar), plus the Grafana alerting provisioning files in a
  ConfigMap labelled ``grafana_alert``;
* ``app.yaml``: the investigation app's Deployment and Service;
* ``explain-worker.yaml``: the explanation workers (``driftd explain-worker``);
* ``kustomization.yaml``.

The store URL comes from the optional Secret ``driftd-store`` (key ``url``), so
that no password is written into a manifest. The daemon listens on the pod
network, so its write path (the alert receiver) needs a bearer token: the Secret
``driftd-auth`` (key ``token``; ``kubectl create secret generic driftd-auth
--from-literal=token=$(openssl rand -hex 32)``); without it the daemon refuses to
start and says so. The ServiceMonitor sends the same token when it scrapes, for
``http.auth.metrics: true``; Alertmanager needs it in a file (``driftd rules
alertmanager --credentials-file``).
"""

from __future__ import annotations

from typing import Any

from alerts.catalogue import RuleOptions
from alerts.grafana import grafana_files
from alerts.rules import rule_groups
from dashboards.build import build_dashboards, dashboard_json
from monitor.config import Settings

__all__ = ["CONFIG_PATH", "kubernetes_manifests"]

CONFIG_DIR = "/etc/driftd"
CONFIG_PATH = f"{CONFIG_DIR}/driftd.yaml"
PORT_NAME = "http-metrics"
APP_PORT = 8501
DATA_DIR = "/var/lib/driftd"


def _labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "driftd", "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "driftd"}


def _meta(name: str, component: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "labels": _labels(component), **extra}


def _security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}


def _pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}


AUTH_SECRET = {"name": "driftd-auth", "key": "token"}


def _env() -> list[dict[str, Any]]:
    return [
        {"name": "DRIFTD_HTTP__HOST", "value": "0.0.0.0"},
        {"name": "DRIFTD_HTTP__AUTH__TOKEN", "valueFrom": {"secretKeyRef": {
            **AUTH_SECRET, "optional": True}}},
        {"name": "DRIFTD_STORE__URL", "valueFrom": {"secretKeyRef": {
            "name": "driftd-store", "key": "url", "optional": True}}},
    ]


def _volumes() -> list[dict[str, Any]]:
    return [{"name": "config", "configMap": {"name": "driftd-config"}},
            {"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}]


def _mounts() -> list[dict[str, Any]]:
    return [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR}, {"name": "tmp", "mountPath": "/tmp"}]


def _deployment(name: str, component: str, replicas: int, container: dict[str, Any],
                grace: int = 30) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, component),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _labels(component)},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": _labels(component)},
                "spec": {"securityContext": _pod_security(), "terminationGracePeriodSeconds": grace,
                         "containers": [{"securityContext": _security(), "workingDir": DATA_DIR,
                                         "volumeMounts": _mounts(), **container}],
                         "volumes": _volumes()},
            },
        },
    }


def _probe(path: str, port: str | int, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period,
            "timeoutSeconds": 5, "failureThreshold": failures}


def _daemon(settings: Settings, image: str, service: str) -> list[dict[str, Any]]:
    container = {
        "name": "driftd", "image": image, "imagePullPolicy": "IfNotPresent",
        "args": ["run", "--config", CONFIG_PATH],
        "env": _env(),
        "ports": [{"name": PORT_NAME, "containerPort": settings.http.port, "protocol": "TCP"}],
        # /healthz: the consumer loop is alive; /readyz: partitions assigned and store up.
        "startupProbe": _probe("/healthz", PORT_NAME, 5, 60),
        "livenessProbe": _probe("/healthz", PORT_NAME, 10, 6),
        "readinessProbe": _probe("/readyz", PORT_NAME, 5, 3),
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                      "limits": {"memory": "2Gi"}},
    }
    deployment = _deployment("driftd", "daemon", 1, container, grace=90)
    svc = {
        "apiVersion": "v1", "kind": "Service", "metadata": _meta(service, "daemon"),
        "spec": {"selector": _labels("daemon"),
                 # A daemon that is not ready (no partitions, store down) must still be
                 # scraped and receive alerts: readiness gates rollouts, not metrics.
                 "publishNotReadyAddresses": True,
                 "ports": [{"name": PORT_NAME, "port": settings.http.port,
                            "targetPort": PORT_NAME, "protocol": "TCP"}]},
    }
    return [deployment, svc]


def _monitoring(settings: Settings, options: RuleOptions) -> list[dict[str, Any]]:
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": _meta("driftd", "daemon"),
        "spec": {"selector": {"matchLabels": _labels("daemon")},
                 "endpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": "15s",
                                "scrapeTimeout": "10s",
                                "authorization": {"type": "Bearer",
                                                  "credentials": dict(AUTH_SECRET)}}]},
    }
    rules = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": _meta("driftd", "alerts"),
        "spec": rule_groups(settings, options),
    }
    return [monitor, rules]


def _dashboards(settings: Settings, options: RuleOptions, pager_url: str,
                ticket_url: str) -> list[dict[str, Any]]:
    maps = []
    for model in build_dashboards(settings, options):
        maps.append({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(f"{model['uid']}-dashboard", "dashboards",
                              annotations={"grafana_folder": "driftd"}),
            "data": {f"{model['uid']}.json": dashboard_json(model)},
        })
    for item in maps:
        item["metadata"]["labels"]["grafana_dashboard"] = "1"
    alerting = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": _meta("driftd-grafana-alerting", "alerts"),
        "data": grafana_files(settings, options, pager_url=pager_url, ticket_url=ticket_url),
    }
    alerting["metadata"]["labels"]["grafana_alert"] = "1"
    return [*maps, alerting]


def _app(settings: Settings, image: str) -> list[dict[str, Any]]:
    container = {
        "name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
        "args": ["app", "--config", CONFIG_PATH, "--host", "0.0.0.0", "--port", str(APP_PORT)],
        "env": _env(),
        "ports": [{"name": "http", "containerPort": APP_PORT, "protocol": "TCP"}],
        "readinessProbe": _probe("/_stcore/health", "http", 10, 3),
        "livenessProbe": _probe("/_stcore/health", "http", 20, 6),
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
    }
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": _meta("driftd-app", "app"),
           "spec": {"selector": _labels("app"),
                    "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}
    return [_deployment("driftd-app", "app", 1, container), svc]


def _explain(settings: Settings, image: str) -> list[dict[str, Any]]:
    container = {
        "name": "explain-worker", "image": image, "imagePullPolicy": "IfNotPresent",
        "args": ["explain-worker", "--config", CONFIG_PATH],
        "env": _env(),
        # A worker is one core (SCHED_IDLE, thread pools of one thread).
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"},
                      "limits": {"cpu": "1", "memory": "2Gi"}},
    }
    replicas = settings.explain.workers if settings.explain.enabled else 0
    return [_deployment("driftd-explain-worker", "explain-worker", replicas, container, grace=60)]


def kubernetes_manifests(settings: Settings, config_text: str, *, image: str, pager_url: str,
                         ticket_url: str, options: RuleOptions | None = None
                         ) -> dict[str, list[dict[str, Any]]]:
    """File name -> the Kubernetes objects it holds."""
    options = options or RuleOptions.from_settings(settings)
    service = options.job  # prometheus-operator names the job after the Service
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("driftd-config", "daemon"),
              "data": {"driftd.yaml": config_text}}
    files = {
        "config.yaml": [config],
        "driftd.yaml": _daemon(settings, image, service),
        "monitoring.yaml": _monitoring(settings, options),
        "dashboards.yaml": _dashboards(settings, options, pager_url, ticket_url),
        "app.yaml": _app(settings, image),
        "explain-worker.yaml": _explain(settings, image),
    }
    files["kustomization.yaml"] = [{
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [name for name in files],
        "labels": [{"pairs": {"app.kubernetes.io/managed-by": "driftd-deploy-generate"}}],
    }]
    return files
