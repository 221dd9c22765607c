"""Grafana's alerting provisioning HTTP API, as the local fake Grafana answers it.

Grafana cannot run on the test machines; :class:`Provisioning` is mounted by
``tests.dashboards.dashboards_fake_grafana.FakeGrafana`` under
``/api/v1/provisioning/``. Every request body is validated against
``tests/alerts/data/grafana-alerting.schema.json`` (the documented shapes; see its
``$comment`` for sources) and against what Grafana checks itself (the folder exists,
a policy names existing contact points and mute timings). A violation is answered
400 and recorded in the fake's ``violations``. Answers have the documented status
codes and shapes (Alerting provisioning HTTP API):

=====================================================  ==================================
``GET/POST /alert-rules``, ``GET/PUT/DELETE /alert-rules/{uid}``  200 list / 201 rule, 200/404, 200/404, 204
``PUT /folder/{folder}/rule-groups/{group}``           200 AlertRuleGroup
``GET/POST /contact-points``, ``PUT /contact-points/{uid}``       200 list / 202 contact point, 202 ack
``GET/PUT /mute-timings/{name}``, ``POST /mute-timings``          200/404, 200, 201
``GET/PUT /policies``                                  200 route tree, 202 ack
=====================================================  ==================================
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).parent / "data" / "grafana-alerting.schema.json"
PREFIX = "/api/v1/provisioning"

_SCHEMA = json.loads(SCHEMA_PATH.read_text())


def validator(definition: str) -> Draft202012Validator:
    """A validator for one ``$defs`` entry of the committed schema."""
    return Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": _SCHEMA["$defs"]})


def schema_errors(definition: str, instance: Any) -> list[str]:
    return [f"{e.json_path}: {e.message[:300]}" for e in validator(definition).iter_errors(instance)]


def _bad(message: str) -> tuple[int, dict[str, Any]]:
    return 400, {"message": message, "violation": True}


class Provisioning:
    """State and handlers of the provisioning endpoints."""

    def __init__(self) -> None:
        self.rules: dict[str, dict[str, Any]] = {}
        self.groups: dict[tuple[str, str], int] = {}
        self.contact_points: dict[str, dict[str, Any]] = {
            "default-email": {"uid": "default-email", "name": "grafana-default-email",
                              "type": "email", "settings": {"addresses": "<example@email.com>"},
                              "disableResolveMessage": False}}
        self.mute_timings: dict[str, dict[str, Any]] = {}
        self.policy: dict[str, Any] = {"receiver": "grafana-default-email",
                                       "group_by": ["grafana_folder", "alertname"]}
        self.provenance_headers: list[str | None] = []

    def handle(self, method: str, path: str, query: str, headers: Any, body: Any,
               grafana: Any) -> tuple[int, Any]:
        parts = [urllib.parse.unquote(p) for p in path.removeprefix(PREFIX).strip("/").split("/")]
        if method in ("POST", "PUT"):
            self.provenance_headers.append(headers.get("X-Disable-Provenance"))
        if parts[0] == "alert-rules":
            return self._rules(method, parts[1:], body, grafana)
        if parts[:1] == ["folder"] and len(parts) == 4 and parts[2] == "rule-groups":
            return self._group(method, parts[1], parts[3], body)
        if parts[0] == "contact-points":
            return self._contact_points(method, parts[1:], query, body)
        if parts[0] == "mute-timings":
            return self._mute_timings(method, parts[1:], body)
        if parts == ["policies"]:
            return self._policies(method, body)
        return _bad(f"unexpected {method} {path}")

    # ----------------------------------------------------------------- rules
    def _rules(self, method: str, rest: list[str], body: Any, grafana: Any) -> tuple[int, Any]:
        if method == "GET" and not rest:
            return 200, list(self.rules.values())
        uid = rest[0] if rest else None
        if method == "GET":
            return (200, self.rules[uid]) if uid in self.rules else (404, {"message": "not found"})
        if method == "DELETE":
            self.rules.pop(uid, None)
            return 204, {}
        errors = schema_errors("ProvisionedAlertRule", body)
        if errors:
            return _bad(f"{method} alert-rules: " + "; ".join(errors))
        if body["folderUID"] not in grafana.folders:
            return _bad(f"{method} alert-rules: folder {body['folderUID']!r} does not exist")
        refs = {q["refId"] for q in body["data"]}
        if body["condition"] not in refs:
            return _bad(f"condition {body['condition']!r} is not one of the rule's refIds {sorted(refs)}")
        if method == "POST":
            if body.get("uid") in self.rules:
                return 409, {"message": "a rule with this uid exists"}
            stored = {**body, "id": len(self.rules) + 1, "provenance": "api"}
            self.rules[stored["uid"]] = stored
            self.groups.setdefault((body["folderUID"], body["ruleGroup"]), 60)
            return 201, stored
        if uid not in self.rules:
            return 404, {"message": "rule not found"}
        if body.get("uid", uid) != uid:
            return _bad(f"PUT alert-rules/{uid}: body uid {body.get('uid')!r} differs")
        self.rules[uid] = {**body, "uid": uid, "id": self.rules[uid]["id"], "provenance": "api"}
        return 200, self.rules[uid]

    def _group(self, method: str, folder: str, group: str, body: Any) -> tuple[int, Any]:
        if method != "PUT":
            return _bad(f"unexpected {method} rule group")
        errors = schema_errors("AlertRuleGroup", body)
        if errors:
            return _bad("PUT rule-groups: " + "; ".join(errors))
        if body["title"] != group or any(r["ruleGroup"] != group or r["folderUID"] != folder
                                         for r in body["rules"]):
            return _bad(f"PUT rule-groups/{group}: rules of another group or folder in the body")
        # Grafana 11: the group's rules become exactly the body's.
        ids = {}
        for uid in [u for u, r in self.rules.items()
                    if r["folderUID"] == folder and r["ruleGroup"] == group]:
            ids[uid] = self.rules.pop(uid)["id"]
        for rule in body["rules"]:
            number = ids.get(rule["uid"], len(self.rules) + len(ids) + 1)
            self.rules[rule["uid"]] = {**rule, "id": number, "provenance": "api"}
        self.groups[(folder, group)] = body["interval"]
        return 200, body

    # ----------------------------------------------------- contact points, mute timings
    def _contact_points(self, method: str, rest: list[str], query: str,
                        body: Any) -> tuple[int, Any]:
        if method == "GET":
            name = urllib.parse.parse_qs(query).get("name", [None])[0]
            return 200, [p for p in self.contact_points.values() if name in (None, p["name"])]
        errors = schema_errors("EmbeddedContactPoint", body)
        if errors:
            return _bad(f"{method} contact-points: " + "; ".join(errors))
        if method == "POST":
            if body.get("uid") in self.contact_points:
                return _bad(f"contact point uid {body['uid']!r} exists; PUT it instead")
            self.contact_points[body["uid"]] = copy.deepcopy(body)
            return 202, body
        if not rest or rest[0] not in self.contact_points:
            return 404, {"message": "contact point not found"}
        self.contact_points[rest[0]] = {**copy.deepcopy(body), "uid": rest[0]}
        return 202, {}

    def _mute_timings(self, method: str, rest: list[str], body: Any) -> tuple[int, Any]:
        if method == "GET":
            if rest and rest[0] in self.mute_timings:
                return 200, self.mute_timings[rest[0]]
            return (404, {"message": "not found"}) if rest else (200, list(self.mute_timings.values()))
        errors = schema_errors("muteTimeInterval", body)
        if errors:
            return _bad(f"{method} mute-timings: " + "; ".join(errors))
        if method == "POST":
            if body["name"] in self.mute_timings:
                return 409, {"message": "exists"}
            self.mute_timings[body["name"]] = body
            return 201, body
        if not rest or rest[0] not in self.mute_timings:
            return 404, {"message": "not found"}
        self.mute_timings[rest[0]] = body
        return 200, body

    # --------------------------------------------------------------- policies
    def _policies(self, method: str, body: Any) -> tuple[int, Any]:
        if method == "GET":
            return 200, {**copy.deepcopy(self.policy), "provenance": ""}
        errors = schema_errors("route", body)
        if errors:
            return _bad("PUT policies: " + "; ".join(errors))
        names = {p["name"] for p in self.contact_points.values()}

        def check(route: dict[str, Any], root: bool) -> str | None:
            receiver = route.get("receiver")
            if root and not receiver:
                return "the root policy needs a receiver"
            if receiver and receiver not in names:
                return f"receiver {receiver!r} is not a contact point"
            for mute in route.get("mute_time_intervals") or []:
                if mute not in self.mute_timings:
                    return f"mute timing {mute!r} does not exist"
            return next((e for r in route.get("routes") or [] if (e := check(r, False))), None)

        problem = check(body, True)
        if problem:
            return _bad(f"PUT policies: {problem}")
        self.policy = copy.deepcopy(body)
        return 202, {"message": "policies updated"}
