"""Install the Grafana-managed driftd alerts through Grafana's alerting provisioning HTTP API.

The order keeps every reference valid at each step (grafana-client, bearer token):

1. the ``driftd`` folder (``GET /api/folders/driftd``, created when absent);
2. contact points ``driftd-pager`` and ``driftd-ticket``: ``GET
   /api/v1/provisioning/contact-points``, then ``PUT .../contact-points/<uid>`` for
   those that exist and ``POST .../contact-points`` for the others;
3. the mute timing of info alerts (``GET``/``PUT``/``POST .../mute-timings``);
4. the rules: ``GET /api/v1/provisioning/alert-rules``, ``PUT .../alert-rules/<uid>``
   or ``POST .../alert-rules`` per rule, ``DELETE`` for driftd rules of the folder that
   the catalogue no longer has, then ``PUT .../folder/driftd/rule-groups/<group>``
   with each group's rules and evaluation interval;
5. the notification policy tree: ``GET /api/v1/provisioning/policies``, the driftd
   policy put first among the root's routes (an older driftd policy replaced, every
   other route kept), ``PUT /api/v1/provisioning/policies``.

Rules and contact points written this way have provenance ``api``: Grafana shows them
read-only, so the generated alerts stay the single source of truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alerts.grafana import GrafanaRuleSet, driftd_policy, info_mute_timing, is_driftd_policy
from dashboards.errors import GrafanaAuthError
from dashboards.push import TOKEN_ENV, call_grafana, ensure_folder, grafana_api
from dashboards.uids import FOLDER_TITLE, FOLDER_UID

__all__ = ["GrafanaAlertingPush", "push_grafana_alerting"]

RULE_UID_PREFIX = "driftd-"


@dataclass
class GrafanaAlertingPush:
    """What :func:`push_grafana_alerting` changed, by uid or name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    contact_points: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


def _missing(api_call: Any, *args: Any) -> Any:
    """``api_call(*args)``, or None when Grafana answers 404."""
    from grafana_client.client import GrafanaClientError

    try:
        return api_call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def push_grafana_alerting(
    rules: GrafanaRuleSet,
    points: Sequence[dict[str, Any]],
    grafana_url: str,
    token: str,
    *,
    timeout: float = 10.0,
) -> GrafanaAlertingPush:
    """Create or update the folder, contact points, mute timing, rules and policy.

    Raises
    ------
    GrafanaAuthError
        No token, or HTTP 401/403.
    GrafanaUnreachableError
        No HTTP answer.
    GrafanaPushError
        Any other refusal, with Grafana's message.
    """
    if not token:
        raise GrafanaAuthError(f"no Grafana token: set ${TOKEN_ENV} to a service-account token")
    base = grafana_url.rstrip("/")
    api = grafana_api(base, token, timeout)
    prov = api.alertingprovisioning
    done = GrafanaAlertingPush()
    ensure_folder(api, base, FOLDER_UID, FOLDER_TITLE)

    existing_points = call_grafana(base, "listing contact points", prov.get_contactpoints) or []
    known = {p.get("uid") for p in existing_points}
    for point in points:
        if point["uid"] in known:
            call_grafana(base, f"updating contact point {point['uid']!r}",
                         prov.update_contactpoint, point["uid"], point)
        else:
            call_grafana(base, f"creating contact point {point['uid']!r}",
                         prov.create_contactpoint, point)
        done.contact_points.append(point["uid"])

    timing = info_mute_timing()
    if call_grafana(base, "reading the info mute timing", _missing, prov.get_mute_timing,
                    timing["name"]) is None:
        call_grafana(base, "creating the info mute timing", prov.create_mute_timing, timing)
    else:
        call_grafana(base, "updating the info mute timing", prov.update_mute_timing,
                     timing["name"], timing)

    current = {r.get("uid"): r for r in call_grafana(base, "listing alert rules",
                                                     prov.get_alertrules_all) or []}
    wanted = rules.api_rules()
    for rule in wanted:
        if rule["uid"] in current:
            call_grafana(base, f"updating alert rule {rule['uid']!r}", prov.update_alertrule,
                         rule["uid"], rule)
            done.updated.append(rule["uid"])
        else:
            call_grafana(base, f"creating alert rule {rule['uid']!r}", prov.create_alertrule, rule)
            done.created.append(rule["uid"])
    ours = {rule["uid"] for rule in wanted}
    for uid, rule in current.items():
        if (uid and uid.startswith(RULE_UID_PREFIX) and uid not in ours
                and rule.get("folderUID") == FOLDER_UID):
            call_grafana(base, f"deleting alert rule {uid!r}", prov.delete_alertrule, uid)
            done.deleted.append(uid)
    for group in rules.api_groups():
        call_grafana(base, f"setting rule group {group['title']!r}", prov.update_rule_group,
                     FOLDER_UID, group["title"], group)
        done.groups.append(group["title"])

    tree = call_grafana(base, "reading the notification policy tree",
                        prov.get_notification_policy_tree) or {}
    tree = {k: v for k, v in tree.items() if k != "provenance"}
    others = [r for r in tree.get("routes") or [] if not is_driftd_policy(r)]
    tree["routes"] = [driftd_policy(), *others]
    tree.setdefault("receiver", points[-1]["uid"])
    call_grafana(base, "setting the notification policy tree",
                 prov.set_notification_policy_tree, tree)
    return done
