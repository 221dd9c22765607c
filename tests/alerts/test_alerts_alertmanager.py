"""The generated Alertmanager config: amtool accepts it, routes by severity, and its
inhibition mutes a model's warnings only under a critical alert of the same model
(checked on a real Alertmanager, next to the naive ``equal: [model]`` rule it avoids)."""

from __future__ import annotations

import copy
import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from alerts.alertmanager import alertmanager_config, incidents_url
from alerts.errors import CheckFailed
from alerts.rules import dump_yaml
from alerts.tools import amtool_check_config
from monitor.config import Settings
from tests.realstack import alertmanager, wait_until, webhook_receiver


def _write(config: dict, tmp_path: Path) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(dump_yaml(config))
    return path


def test_incidents_url_comes_from_the_http_section():
    settings = Settings(http={"host": "0.0.0.0", "port": 9200})
    assert incidents_url(settings) == "http://127.0.0.1:9200/api/v1/alerts"


@pytest.mark.integration
def test_amtool_accepts_the_config_and_rejects_a_broken_one(tmp_path, amtool):
    config = alertmanager_config(
        "http://127.0.0.1:1/pager",
        "http://127.0.0.1:1/ticket",
        "http://127.0.0.1:9108/api/v1/alerts",
    )
    assert "SUCCESS" in amtool_check_config(_write(config, tmp_path), amtool)
    broken = copy.deepcopy(config)
    broken["route"]["routes"][1]["receiver"] = "nowhere"
    with pytest.raises(CheckFailed, match="nowhere"):
        amtool_check_config(_write(broken, tmp_path), amtool)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            ["alertname=DriftdModelDrift", "severity=critical", "model=fraud"],
            "driftd-incidents,pager",
        ),
        (
            ["alertname=DriftdFeatureDrift", "severity=warning", "model=fraud"],
            "driftd-incidents,ticket",
        ),
        (["alertname=DriftdSeriesCapped", "severity=info"], "driftd-incidents,null"),
        (["alertname=SomebodyElses", "severity=critical"], "null"),
    ],
)
def test_routes_by_severity(labels, receivers, tmp_path, amtool):
    path = _write(
        alertmanager_config("http://127.0.0.1:1/p", "http://127.0.0.1:1/t", "http://127.0.0.1:1/i"),
        tmp_path,
    )
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={path}", *labels],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stdout.strip() == receivers


def _post_alerts(url: str, alerts: list[dict]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _alert(name: str, severity: str, **labels: str) -> dict:
    return {
        "labels": {"alertname": name, "severity": severity, "job": "driftd", **labels},
        "annotations": {"summary": name},
    }


@pytest.mark.integration
@pytest.mark.parametrize("variant", ["generated", "naive"])
def test_inhibition_on_a_real_alertmanager(variant, alertmanager_bin):
    with webhook_receiver() as pager, webhook_receiver() as ticket:
        config = alertmanager_config(pager.url, ticket.url, group_wait="1s", group_interval="1s")
        if variant == "naive":
            # The trap: `equal: [model]` alone treats "model missing on both sides" as equal.
            config["inhibit_rules"] = [
                {
                    "source_matchers": ['severity="critical"'],
                    "target_matchers": ['severity="warning"'],
                    "equal": ["model"],
                }
            ]
        with alertmanager(config) as am:
            _post_alerts(
                am.url,
                [
                    _alert("DriftdModelDrift", "critical", model="fraud", instance="a"),
                    _alert("DriftdDown", "critical", instance="a"),
                ],
            )
            wait_until(lambda: len(am.alerts()) == 2, 10, what="critical alerts in Alertmanager")
            _post_alerts(
                am.url,
                [
                    _alert(
                        "DriftdFeatureDrift",
                        "warning",
                        model="fraud",
                        instance="a",
                        feature="amount",
                    ),
                    _alert(
                        "DriftdFeatureDrift", "warning", model="churn", instance="c", feature="age"
                    ),
                    _alert("DriftdConsumerLagHigh", "warning", instance="b", topic="predictions"),
                    _alert("DriftdStoreErrors", "warning", instance="a", operation="write_window"),
                ],
            )
            for name in ("DriftdModelDrift", "DriftdDown"):
                pager.wait_for_alert(name, timeout=20)

            def suppressed() -> dict[tuple[str, str], bool]:
                return {
                    (
                        a["labels"]["alertname"],
                        a["labels"].get("model") or a["labels"]["instance"],
                    ): bool(a["status"]["inhibitedBy"])
                    for a in am.alerts()
                }

            wait_until(lambda: len(suppressed()) == 6, 10, what="all alerts in Alertmanager")
            if variant == "naive":
                # The model-less critical mutes a warning of another instance: the trap.
                wait_until(
                    lambda: suppressed()[("DriftdConsumerLagHigh", "b")],
                    10,
                    what="naive inhibition",
                )
                return
            ticket.wait_for_alert("DriftdConsumerLagHigh", timeout=20)
            ticket.wait_for_alert("DriftdFeatureDrift", timeout=20)
            state = suppressed()
            assert state[("DriftdFeatureDrift", "fraud")] is True  # critical on the same model
            assert state[("DriftdStoreErrors", "a")] is True  # driftd down on the same instance
            assert state[("DriftdFeatureDrift", "churn")] is False
            assert state[("DriftdConsumerLagHigh", "b")] is False
            delivered = {
                (a["labels"]["alertname"], a["labels"].get("model", "")) for a in ticket.alerts()
            }
            assert delivered == {("DriftdFeatureDrift", "churn"), ("DriftdConsumerLagHigh", "")}
            assert {a["labels"]["alertname"] for a in pager.alerts()} == {
                "DriftdModelDrift",
                "DriftdDown",
            }
