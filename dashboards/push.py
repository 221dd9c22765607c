"""Upload the dashboards to a running Grafana through its HTTP API (grafana-client).

The order of calls follows Grafana's documented API:

1. ``GET /api/folders/<uid>``; on 404, ``POST /api/folders`` with ``{"uid", "title"}``;
2. ``POST /api/dashboards/db`` with ``{"dashboard", "folderUid", "overwrite": true,
   "message"}`` for each dashboard; the answer carries the dashboard's ``url``.

Authentication is a bearer token (a Grafana service-account token), read by the
caller from the environment and never accepted on the command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.errors import (
    DashboardError,
    GrafanaAuthError,
    GrafanaPushError,
    GrafanaUnreachableError,
)

__all__ = ["PushedDashboard", "call_grafana", "ensure_folder", "grafana_api", "push_dashboards"]

TOKEN_ENV = "GRAFANA_TOKEN"


@dataclass(frozen=True, slots=True)
class PushedDashboard:
    """A dashboard Grafana accepted: its uid, version and full URL."""

    uid: str
    title: str
    version: int
    url: str


def grafana_api(grafana_url: str, token: str, timeout: float) -> Any:
    try:
        from grafana_client import GrafanaApi
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise DashboardError(
            "pushing dashboards needs grafana-client: pip install 'driftd[grafana]'"
        ) from exc
    return GrafanaApi.from_url(grafana_url, credential=token, timeout=timeout)


def call_grafana(grafana_url: str, what: str, request, *args: Any, **kwargs: Any) -> Any:
    """Run one grafana-client call and turn its failures into driftd errors."""
    from grafana_client.client import GrafanaException, GrafanaTimeoutError
    from niquests.exceptions import RequestException

    try:
        return request(*args, **kwargs)
    except GrafanaTimeoutError as exc:
        raise GrafanaUnreachableError(f"Grafana at {grafana_url} did not answer in time ({what})") from exc
    except GrafanaException as exc:
        status = exc.status_code
        if status in (401, 403):
            hint = ("the token is missing, expired or wrong" if status == 401 else
                    "the token's service account lacks permission (needs Editor on the folder)")
            raise GrafanaAuthError(
                f"Grafana at {grafana_url} refused {what} with HTTP {status}: {hint}; set a "
                f"service-account token in ${TOKEN_ENV}"
            ) from exc
        if status == 0:
            raise GrafanaUnreachableError(f"cannot reach Grafana at {grafana_url}: {exc.message}") from exc
        raise GrafanaPushError(f"Grafana at {grafana_url} refused {what}: {exc.message}") from exc
    except RequestException as exc:
        raise GrafanaUnreachableError(f"cannot reach Grafana at {grafana_url} ({what}): {exc}") from exc


def ensure_folder(api: Any, grafana_url: str, uid: str, title: str) -> None:
    from grafana_client.client import GrafanaClientError

    def existing() -> Any:
        try:
            return api.folder.get_folder(uid)
        except GrafanaClientError as exc:
            if exc.status_code == 404:
                return None
            raise

    if call_grafana(grafana_url, f"reading folder {uid!r}", existing) is None:
        call_grafana(grafana_url, f"creating folder {title!r}", api.folder.create_folder, title, uid=uid)


def push_dashboards(
    models: Sequence[dict[str, Any]],
    grafana_url: str,
    token: str,
    *,
    folder_uid: str,
    folder_title: str,
    message: str = "driftd dashboards push",
    timeout: float = 10.0,
) -> list[PushedDashboard]:
    """Create the folder when absent and upload each dashboard with ``overwrite``.

    Raises
    ------
    GrafanaAuthError
        On HTTP 401 or 403.
    GrafanaUnreachableError
        When no HTTP answer comes back (refused, DNS, timeout).
    GrafanaPushError
        On any other refusal, with Grafana's message.
    """
    if not token:
        raise GrafanaAuthError(f"no Grafana token: set ${TOKEN_ENV} to a service-account token")
    base = grafana_url.rstrip("/")
    api = grafana_api(base, token, timeout)
    ensure_folder(api, base, folder_uid, folder_title)
    pushed = []
    for model in models:
        payload = {"dashboard": {**model, "id": None}, "folderUid": folder_uid,
                   "overwrite": True, "message": message}
        answer = call_grafana(base, f"saving dashboard {model['uid']!r}", api.dashboard.update_dashboard,
                       payload)
        if not isinstance(answer, dict) or "url" not in answer:
            raise GrafanaPushError(f"Grafana at {base} answered saving {model['uid']!r} "
                                   f"without a dashboard url: {answer!r}")
        pushed.append(PushedDashboard(uid=answer.get("uid", model["uid"]), title=model["title"],
                                      version=int(answer.get("version", 0)),
                                      url=f"{base}{answer['url']}"))
    return pushed
