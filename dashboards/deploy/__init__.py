"""Deployment artefacts: Kubernetes manifests and a docker-compose stack (``driftd deploy generate``).

Generated from the configuration with the same code as the rules and dashboards, so
a deployment never carries a second, hand-edited copy of them::

    deploy/Dockerfile
    deploy/kubernetes/*.yaml         kubectl apply -k deploy/kubernetes
    deploy/compose/docker-compose.yml  docker compose -f deploy/compose/docker-compose.yml up
"""

from __future__ import annotations

from pathlib import Path

import yaml

from alerts.catalogue import RuleOptions
from alerts.rules import dump_yaml
from dashboards.deploy.compose import compose_files
from dashboards.deploy.kubernetes import kubernetes_manifests
from monitor.config import Settings

__all__ = ["DEFAULT_IMAGE", "DOCKERFILE", "PLACEHOLDER_PAGER", "PLACEHOLDER_TICKET", "deploy_files",
           "write_deploy"]

DEFAULT_IMAGE = "driftd:0.1.0"
# Not real endpoints: regenerate with --pager-url/--ticket-url before paging anyone.
PLACEHOLDER_PAGER = "https://pager.example.invalid/driftd"
PLACEHOLDER_TICKET = "https://tickets.example.invalid/driftd"

DOCKERFILE = """\
# driftd image: the daemon, the investigation app and the explanation workers.
#   docker build -f deploy/Dockerfile -t driftd:0.1.0 .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor monitor
COPY detectors detectors
COPY explainers explainers
COPY dashboards dashboards
COPY alerts alerts
COPY schemas schemas
RUN pip install '.[postgres,explain,app,grafana]' && rm -rf /src
RUN useradd --uid 10001 --home-dir /var/lib/driftd --create-home driftd
USER 10001
WORKDIR /var/lib/driftd
EXPOSE 9108 8501
ENTRYPOINT ["driftd"]
CMD ["run", "--config", "/etc/driftd/driftd.yaml"]
"""


def _documents(objects: list[dict]) -> str:
    return "---\n".join(dump_yaml(obj) for obj in objects)


def deploy_files(settings: Settings, config_text: str, *, image: str = DEFAULT_IMAGE,
                 pager_url: str = PLACEHOLDER_PAGER, ticket_url: str = PLACEHOLDER_TICKET,
                 options: RuleOptions | None = None) -> dict[str, str]:
    """Relative path under ``deploy/`` -> file text."""
    options = options or RuleOptions.from_settings(settings)
    files = {"Dockerfile": DOCKERFILE}
    manifests = kubernetes_manifests(settings, config_text, image=image, pager_url=pager_url,
                                     ticket_url=ticket_url, options=options)
    for name, objects in manifests.items():
        files[f"kubernetes/{name}"] = _documents(objects)
    for name, text in compose_files(settings, config_text, image=image, pager_url=pager_url,
                                    ticket_url=ticket_url, options=options).items():
        files[f"compose/{name}"] = text
    return files


def write_deploy(files: dict[str, str], out: Path) -> list[Path]:
    """Write ``files`` under ``out``; the paths written."""
    written = []
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def load_documents(text: str) -> list[dict]:
    """The YAML documents of a manifest file."""
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]
