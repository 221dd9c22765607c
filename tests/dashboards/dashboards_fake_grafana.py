"""A local HTTP server that answers like Grafana's folder and dashboard HTTP API.

No Grafana server can run on the test machines, so this is the one stand-in the
dashboards tests use. It checks every request against the documented API
(https://grafana.com/docs/grafana/latest/developers/http_api/folder/ and
.../dashboard/) and answers with the documented shapes:

* ``Authorization: Bearer <token>``: unknown token → 401 ``{"message": "invalid API
  key"}``; a Viewer token may read but not write → 403;
* ``GET /api/folders/<uid>`` → 200 folder or 404;
* ``POST /api/folders`` ``{"title", "uid"?}`` → 200 folder; 409 when the uid exists;
* ``POST /api/dashboards/db`` ``{"dashboard": {..., "id": null|absent, "uid",
  "title"}, "folderUid", "overwrite", "message"?}`` → 200 ``{"id", "uid", "url",
  "status", "version", "slug"}``; 400 for a missing folder or malformed body; 412
  ``version-mismatch`` when the uid exists and ``overwrite`` is not true.

Requests that break the documented shape are answered 400 and listed in
``violations`` so that a test can assert there were none.

``/api/v1/provisioning/...`` (alerting provisioning) is answered by
:class:`tests.alerts.grafana_fake_provisioning.Provisioning`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UID = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


@dataclass
class FakeGrafana:
    url: str = ""
    tokens: dict[str, str] = field(default_factory=lambda: {"editor-token": "Editor",
                                                             "viewer-token": "Viewer"})
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    provisioning: Any = None

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        payload = None
        path, _, query = path.partition("?")
        if method in ("POST", "PUT"):
            if not headers.get("Content-Type", "").startswith("application/json"):
                return self._violation(f"{path}: Content-Type {headers.get('Content-Type')!r}")
            try:
                payload = json.loads(body)
            except ValueError:
                return self._violation(f"{path}: body is not JSON")
        with self.lock:
            self.requests.append((method, path, payload))
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return 401, {"message": "Unauthorized"}
        role = self.tokens.get(auth.removeprefix("Bearer "))
        if role is None:
            return 401, {"message": "invalid API key"}
        if method != "GET" and role != "Editor":
            return 403, {"message": "You'll need additional permissions to perform this action. "
                                    "Permissions needed: dashboards:create"}
        if path.startswith("/api/v1/provisioning/") and self.provisioning is not None:
            status, reply = self.provisioning.handle(method, path, query, headers, payload, self)
            if status == 400 and isinstance(reply, dict) and reply.get("violation"):
                return self._violation(reply["message"])
            return status, reply
        if method == "GET" and path.startswith("/api/folders/"):
            folder = self.folders.get(path.removeprefix("/api/folders/"))
            return (200, folder) if folder else (404, {"message": "folder not found"})
        if method == "POST" and path == "/api/folders":
            return self._create_folder(payload)
        if method == "POST" and path == "/api/dashboards/db":
            return self._save_dashboard(payload)
        return self._violation(f"unexpected {method} {path}", status=404)

    def _violation(self, what: str, status: int = 400) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.violations.append(what)
        return status, {"message": what}

    def _create_folder(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("title"), str) or not body["title"]:
            return self._violation("POST /api/folders: title missing")
        uid = body.get("uid")
        if uid is not None and not UID.match(uid):
            return self._violation(f"POST /api/folders: invalid uid {uid!r}")
        uid = uid or f"f{len(self.folders) + 1}"
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        folder = {"id": len(self.folders) + 1, "uid": uid, "title": body["title"],
                  "url": f"/dashboards/f/{uid}/{_slug(body['title'])}", "version": 1}
        self.folders[uid] = folder
        return 200, folder

    def _save_dashboard(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            return self._violation("POST /api/dashboards/db: no dashboard object")
        dashboard = body["dashboard"]
        if dashboard.get("id") is not None:
            return self._violation("POST /api/dashboards/db: dashboard.id must be null to save by uid")
        uid, title = dashboard.get("uid"), dashboard.get("title")
        if not isinstance(uid, str) or not UID.match(uid) or not isinstance(title, str) or not title:
            return self._violation(f"POST /api/dashboards/db: bad uid/title {uid!r}/{title!r}")
        if not isinstance(dashboard.get("panels"), list):
            return self._violation("POST /api/dashboards/db: dashboard has no panels list")
        if "overwrite" in body and not isinstance(body["overwrite"], bool):
            return self._violation("POST /api/dashboards/db: overwrite must be a boolean")
        folder_uid = body.get("folderUid")
        if folder_uid is not None and folder_uid not in self.folders:
            return 400, {"message": "folder not found"}
        previous = self.dashboards.get(uid)
        if previous is not None and body.get("overwrite") is not True:
            return 412, {"message": "The dashboard has been changed by someone else",
                         "status": "version-mismatch"}
        version = previous["version"] + 1 if previous else 1
        self.dashboards[uid] = {"dashboard": dashboard, "folderUid": folder_uid, "version": version,
                                "message": body.get("message")}
        return 200, {"id": len(self.dashboards), "uid": uid, "url": f"/d/{uid}/{_slug(title)}",
                     "status": "success", "version": version, "slug": _slug(title)}


@contextmanager
def fake_grafana() -> Iterator[FakeGrafana]:
    """Serve a :class:`FakeGrafana` on a free loopback port in a thread."""
    from tests.alerts.grafana_fake_provisioning import Provisioning

    grafana = FakeGrafana(provisioning=Provisioning())

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, reply = grafana.handle(method, self.path, self.headers, self.rfile.read(length))
            data = b"" if status == 204 else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    grafana.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield grafana
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
