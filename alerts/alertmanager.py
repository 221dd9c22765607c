"""The Alertmanager configuration: who hears about which driftd alert.

* ``critical`` -> the **pager** receiver (a webhook: PagerDuty/Opsgenie bridges,
  or any paging endpoint);
* ``warning`` -> the **ticket** receiver;
* ``info`` -> nobody (the ``null`` receiver);
* every driftd alert, whatever its severity, also goes to driftd's own receiver
  (``POST /api/v1/alerts``), which records it as an incident for the
  investigation app (a ``continue: true`` route in front of the others).

Inhibition: a critical alert on a model mutes that model's warnings (drift share
pages, the per-feature drift tickets it explains are noise). The ``equal:`` labels
trap: Alertmanager treats a label missing on both sides as equal, so ``equal:
[model]`` alone would let any model-less critical (``DriftdDown``) mute every
model-less warning of every instance. Both matchers therefore require
``model=~".+"``; driftd-down mutes only warnings of the same ``job`` and
``instance``, which every pipeline alert carries.

>>> config = alertmanager_config("http://pager/hook", "http://tickets/hook")
>>> [r["name"] for r in config["receivers"]]
['null', 'pager', 'ticket']
>>> config["inhibit_rules"][0]["equal"]
['model']
"""

from __future__ import annotations

from typing import Any

from monitor.config import Settings

__all__ = ["ALERT_NAME_MATCHER", "ALERT_NAME_PATTERN", "GROUP_BY", "TIMINGS", "alertmanager_config",
           "bearer_scrape_auth", "incidents_url"]

ALERT_NAME_PATTERN = "Driftd.+"
ALERT_NAME_MATCHER = f'alertname=~"{ALERT_NAME_PATTERN}"'
# One notification per alert and model (features of one model are batched).
GROUP_BY = ("alertname", "job", "model")
# Notification timings shared with the Grafana notification policy (alerts.grafana).
TIMINGS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
           "pager_repeat_interval": "1h"}
RECEIVER_PATH = "/api/v1/alerts"


def incidents_url(settings: Settings) -> str:
    """URL of driftd's own alert receiver, from the ``http`` section of the configuration."""
    host = settings.http.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{settings.http.port}{RECEIVER_PATH}"


def _webhook(name: str, url: str, credentials_file: str | None = None) -> dict[str, Any]:
    webhook: dict[str, Any] = {"url": url, "send_resolved": True, "max_alerts": 0}
    if credentials_file:
        # Alertmanager sends `Authorization: Bearer <file content>` (re-read on each request).
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": credentials_file}
        }
    return {"name": name, "webhook_configs": [webhook]}


def bearer_scrape_auth(credentials_file: str) -> dict[str, Any]:
    """The ``authorization`` block of a Prometheus scrape job for a token-protected /metrics.

    >>> bearer_scrape_auth("/run/secrets/driftd-token")
    {'authorization': {'type': 'Bearer', 'credentials_file': '/run/secrets/driftd-token'}}
    """
    return {"authorization": {"type": "Bearer", "credentials_file": credentials_file}}


def alertmanager_config(
    pager_url: str,
    ticket_url: str,
    incidents_receiver_url: str | None = None,
    *,
    incidents_credentials_file: str | None = None,
    group_wait: str = TIMINGS["group_wait"],
    group_interval: str = TIMINGS["group_interval"],
    repeat_interval: str = TIMINGS["repeat_interval"],
    pager_repeat_interval: str = TIMINGS["pager_repeat_interval"],
    resolve_timeout: str = "5m",
) -> dict[str, Any]:
    """The Alertmanager configuration as a mapping (dump it with :func:`alerts.rules.dump_yaml`).

    Parameters
    ----------
    pager_url, ticket_url
        Webhook URLs of the paging and ticketing endpoints.
    incidents_receiver_url
        driftd's receiver (see :func:`incidents_url`); left out when None.
    incidents_credentials_file
        File holding driftd's ``http.auth`` token, as Alertmanager sees it; the
        receiver then sends ``Authorization: Bearer`` with its content.
    group_wait, group_interval, repeat_interval, pager_repeat_interval, resolve_timeout
        Alertmanager timings (tests use seconds).
    """
    routes: list[dict[str, Any]] = []
    receivers: list[dict[str, Any]] = [
        {"name": "null"},
        _webhook("pager", pager_url),
        _webhook("ticket", ticket_url),
    ]
    if incidents_receiver_url:
        receivers.append(
            _webhook("driftd-incidents", incidents_receiver_url, incidents_credentials_file)
        )
        routes.append(
            {"receiver": "driftd-incidents", "matchers": [ALERT_NAME_MATCHER], "continue": True}
        )
    routes += [
        {
            "receiver": "pager",
            "matchers": [ALERT_NAME_MATCHER, 'severity="critical"'],
            "repeat_interval": pager_repeat_interval,
        },
        {"receiver": "ticket", "matchers": [ALERT_NAME_MATCHER, 'severity="warning"']},
        {"receiver": "null", "matchers": [ALERT_NAME_MATCHER, 'severity="info"']},
    ]
    return {
        "global": {"resolve_timeout": resolve_timeout},
        "route": {
            "receiver": "null",
            "group_by": list(GROUP_BY),
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"', 'model=~".+"'],
                "target_matchers": ['severity=~"warning|info"', 'model=~".+"'],
                "equal": ["model"],
            },
            {
                "source_matchers": ['alertname="DriftdDown"'],
                "target_matchers": ['severity=~"warning|info"', 'instance=~".+"'],
                "equal": ["job", "instance"],
            },
        ],
        "receivers": receivers,
    }
