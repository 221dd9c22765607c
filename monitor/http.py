"""The daemon's one HTTP port: ``/metrics``, ``/healthz``, ``/readyz`` and mounted handlers.

A standard-library threading server is enough here: scrapes and health checks are
a few requests a second, and it keeps the core daemon free of web frameworks.
Handlers receive the request body and query and return (status, content type,
body); they never see the socket.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.auth import CHALLENGE, UNAUTHORIZED_BODY, BearerAuth

__all__ = ["HttpServer", "Handler", "Response"]

log = logging.getLogger(__name__)

Response = tuple[int, str, bytes]
Handler = Callable[[bytes, dict[str, list[str]]], Response]
_MAX_BODY = 4 * 1024 * 1024


class HttpServer:
    """Serves metrics and health on ``host:port`` in a background thread.

    Parameters
    ----------
    health, ready
        Callables returning ``(ok, details)``; details are shown as JSON.
    auth
        Checks the bearer token of every mounted route (and of ``/metrics`` when
        ``auth.metrics``); ``/healthz`` and ``/readyz`` stay open for probes. A
        request without the token gets 401 before its body is read.
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Callable[[], tuple[bool, dict[str, object]]],
        ready: Callable[[], tuple[bool, dict[str, object]]],
        auth: BearerAuth | None = None,
    ) -> None:
        self.registry = registry
        self.auth = auth or BearerAuth(None)
        self.routes: dict[tuple[str, str], Handler] = {}
        self._health = health
        self._ready = ready
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A client that announces a body and never sends it must not hold a thread forever.
            timeout = 30
            server_version = "driftd"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
                log.debug("http: " + format, *args)

            def _send(self, status: int, content_type: str, body: bytes, **headers: str) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Content-Type-Options", "nosniff")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                try:
                    query = parse_qs(parts.query, max_num_fields=50)
                except ValueError:  # more than 50 fields
                    self._send(400, "application/json", b'{"error":"too many query parameters"}')
                    return
                body = b""
                if not server.authorized(method, parts.path, self.headers.get("Authorization")):
                    # The body is not read: close the connection rather than parse it as a request.
                    self.close_connection = True
                    self._send(401, "application/json", UNAUTHORIZED_BODY,
                               WWW_Authenticate=CHALLENGE, Connection="close")
                    return
                if method == "POST":
                    try:
                        length = int(self.headers.get("Content-Length") or 0)
                    except ValueError:
                        length = -1
                    if length < 0 or length > _MAX_BODY:
                        self._send(413 if length > 0 else 400, "application/json", b'{"error":"bad or too large body"}')
                        return
                    body = self.rfile.read(length)
                try:
                    status, content_type, payload = server.handle(method, parts.path, body, query)
                except Exception:  # noqa: BLE001 - a handler bug must not kill the server
                    log.exception("handler for %s %s failed", method, parts.path)
                    status, content_type, payload = 500, "application/json", b'{"error":"internal error"}'
                self._send(status, content_type, payload)

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                self._dispatch("GET")

            def do_HEAD(self) -> None:  # noqa: N802
                self._dispatch("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._dispatch("POST")

        self._server = ThreadingHTTPServer((host, port), _RequestHandler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Mount ``handler`` for ``method path`` (e.g. the alert receiver)."""
        self.routes[(method, path)] = handler

    def authorized(self, method: str, path: str, authorization: str | None) -> bool:
        """Whether a request may reach its handler (health probes never need a token)."""
        if path in ("/healthz", "/readyz") or not self.auth.enabled:
            return True
        if path == "/metrics":
            return not self.auth.metrics or self.auth.allows(authorization)
        if (method, path) not in self.routes:
            return True  # answered 404/405 without touching anything
        return self.auth.allows(authorization)

    def handle(self, method: str, path: str, body: bytes, query: dict[str, list[str]]) -> Response:
        if method == "GET" and path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if method == "GET" and path in ("/healthz", "/readyz"):
            ok, details = (self._health if path == "/healthz" else self._ready)()
            return (200 if ok else 503), "application/json", orjson.dumps({"ok": ok, **details})
        handler = self.routes.get((method, path))
        if handler is None:
            allowed = sorted(m for m, p in self.routes if p == path)
            if allowed or path in ("/metrics", "/healthz", "/readyz"):
                return 405, "application/json", b'{"error":"method not allowed"}'
            return 404, "application/json", b'{"error":"not found"}'
        return handler(body, query)

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="driftd-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
