"""A docker-compose stack for trying driftd locally, generated with its configuration files.

Services: ``broker`` (Apache Kafka in KRaft mode), ``postgres``, ``driftd``, ``app``,
``prometheus`` (scraping driftd, with the generated rules), ``alertmanager`` (the
generated routing; every alert also recorded by driftd), ``grafana`` (the generated
datasource, dashboards and alert rules provisioned from files). All configuration
files sit next to ``docker-compose.yml`` and are mounted read-only.

driftd listens on the compose network, so its alert receiver needs a bearer token:
create ``secrets/driftd-token`` next to ``docker-compose.yml`` (``openssl rand -hex
32 > secrets/driftd-token``) before ``docker compose up``. It is mounted as a
compose secret into driftd (``http.auth.token_file``), Alertmanager (the receiver's
``credentials_file``) and Prometheus (the scrape ``authorization``, used when
``http.auth.metrics`` is on).
"""

from __future__ import annotations

from typing import Any

from alerts.alertmanager import RECEIVER_PATH, alertmanager_config, bearer_scrape_auth
from alerts.catalogue import RuleOptions
from alerts.grafana import grafana_files
from alerts.rules import RULES_FILE, dump_yaml, generate_rule_files
from dashboards.build import (
    build_dashboards,
    dashboard_json,
    dashboard_provisioning,
    datasource_provisioning,
)
from monitor.config import Settings

__all__ = ["COMPOSE_FILE", "compose_files"]

COMPOSE_FILE = "docker-compose.yml"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.4"
ALERTMANAGER_IMAGE = "prom/alertmanager:v0.27.0"
GRAFANA_IMAGE = "grafana/grafana:11.6.0"
POSTGRES_IMAGE = "postgres:16"
KAFKA_IMAGE = "apache/kafka:3.9.0"
STORE_URL = "postgresql+psycopg://driftd:driftd@postgres:5432/driftd"
TOKEN_SECRET = "driftd-token"
TOKEN_FILE = f"/run/secrets/{TOKEN_SECRET}"


def _driftd_env(settings: Settings) -> dict[str, str]:
    return {
        "DRIFTD_KAFKA__BOOTSTRAP_SERVERS": "broker:9092",
        "DRIFTD_STORE__URL": STORE_URL,
        "DRIFTD_HTTP__HOST": "0.0.0.0",
        "DRIFTD_HTTP__AUTH__TOKEN_FILE": TOKEN_FILE,
        "DRIFTD_HTTP__PORT": str(settings.http.port),
        "DRIFTD_ALERTS__GRAFANA_URL": "http://localhost:3000",
        "DRIFTD_APP__URL": "http://localhost:8501",
    }


def _compose(settings: Settings, image: str) -> dict[str, Any]:
    port = settings.http.port
    driftd_env = _driftd_env(settings)
    healthy = {"condition": "service_healthy"}
    return {
        "name": "driftd",
        "services": {
            "broker": {
                "image": KAFKA_IMAGE,
                "environment": {
                    "KAFKA_NODE_ID": "1", "KAFKA_PROCESS_ROLES": "broker,controller",
                    "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
                    "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://broker:9092",
                    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@broker:9093",
                    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                    "KAFKA_NUM_PARTITIONS": "3",
                },
                "healthcheck": {"test": ["CMD-SHELL", "/opt/kafka/bin/kafka-topics.sh "
                                         "--bootstrap-server localhost:9092 --list"],
                                "interval": "10s", "timeout": "10s", "retries": 10},
            },
            "postgres": {
                "image": POSTGRES_IMAGE,
                "environment": {"POSTGRES_USER": "driftd", "POSTGRES_PASSWORD": "driftd",
                                "POSTGRES_DB": "driftd"},
                "volumes": ["postgres-data:/var/lib/postgresql/data"],
                "healthcheck": {"test": ["CMD-SHELL", "pg_isready -U driftd -d driftd"],
                                "interval": "5s", "timeout": "5s", "retries": 20},
            },
            "driftd": {
                "image": image,
                "build": {"context": "../..", "dockerfile": "deploy/Dockerfile"},
                "command": ["run", "--config", "/etc/driftd/driftd.yaml"],
                "environment": driftd_env,
                "volumes": ["./driftd.yaml:/etc/driftd/driftd.yaml:ro"],
                "secrets": [TOKEN_SECRET],
                "ports": [f"{port}:{port}"],
                "depends_on": {"broker": healthy, "postgres": healthy},
                "stop_grace_period": "90s",
                "healthcheck": {"test": ["CMD", "python", "-c", "import urllib.request; "
                                         f"urllib.request.urlopen('http://127.0.0.1:{port}/healthz')"],
                                "interval": "10s", "timeout": "5s", "retries": 6},
                "restart": "unless-stopped",
            },
            "app": {
                "image": image,
                "command": ["app", "--config", "/etc/driftd/driftd.yaml", "--host", "0.0.0.0",
                            "--port", "8501"],
                "environment": driftd_env,
                "volumes": ["./driftd.yaml:/etc/driftd/driftd.yaml:ro"],
                "ports": ["8501:8501"],
                "depends_on": {"postgres": healthy, "driftd": {"condition": "service_started"}},
                "restart": "unless-stopped",
            },
            "prometheus": {
                "image": PROMETHEUS_IMAGE,
                "command": ["--config.file=/etc/prometheus/prometheus.yml",
                            "--storage.tsdb.path=/prometheus", "--web.enable-lifecycle"],
                "volumes": ["./prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                            "./rules:/etc/prometheus/rules:ro", "prometheus-data:/prometheus"],
                "secrets": [TOKEN_SECRET],
                "ports": ["9090:9090"],
                "depends_on": ["driftd", "alertmanager"],
            },
            "alertmanager": {
                "image": ALERTMANAGER_IMAGE,
                "command": ["--config.file=/etc/alertmanager/alertmanager.yml"],
                "volumes": ["./alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"],
                "secrets": [TOKEN_SECRET],
                "ports": ["9093:9093"],
            },
            "grafana": {
                "image": GRAFANA_IMAGE,
                "environment": {"GF_AUTH_ANONYMOUS_ENABLED": "true",
                                "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer"},
                "volumes": ["./grafana/provisioning:/etc/grafana/provisioning:ro",
                            "./grafana/dashboards:/var/lib/grafana/dashboards/driftd:ro"],
                "ports": ["3000:3000"],
                "depends_on": ["prometheus"],
            },
        },
        "volumes": {"postgres-data": {}, "prometheus-data": {}},
        "secrets": {TOKEN_SECRET: {"file": f"./secrets/{TOKEN_SECRET}"}},
    }


def compose_files(settings: Settings, config_text: str, *, image: str, pager_url: str,
                  ticket_url: str, options: RuleOptions | None = None) -> dict[str, str]:
    """Relative path -> text of the compose stack and the files it mounts."""
    options = options or RuleOptions.from_settings(settings)
    port = settings.http.port
    prometheus = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["/etc/prometheus/rules/*.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]},
        "scrape_configs": [{"job_name": options.job,
                            "static_configs": [{"targets": [f"driftd:{port}"]}],
                            **bearer_scrape_auth(TOKEN_FILE)}],
    }
    files = {
        COMPOSE_FILE: dump_yaml(_compose(settings, image)),
        "driftd.yaml": config_text,
        "prometheus.yml": dump_yaml(prometheus),
        f"rules/{RULES_FILE}": generate_rule_files(settings, options)[RULES_FILE],
        "alertmanager.yml": dump_yaml(alertmanager_config(
            pager_url, ticket_url, f"http://driftd:{port}{RECEIVER_PATH}",
            incidents_credentials_file=TOKEN_FILE)),
        "grafana/provisioning/datasources/driftd.yaml": dump_yaml(
            datasource_provisioning("http://prometheus:9090")),
        "grafana/provisioning/dashboards/driftd.yaml": dump_yaml(
            dashboard_provisioning("/var/lib/grafana/dashboards/driftd")),
    }
    for name, text in grafana_files(settings, options, pager_url=pager_url,
                                    ticket_url=ticket_url).items():
        files[f"grafana/provisioning/alerting/{name}"] = text
    for model in build_dashboards(settings, options):
        files[f"grafana/dashboards/{model['uid']}.json"] = dashboard_json(model)
    return files
