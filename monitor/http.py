"""The daemon's one HTTP port: ``/metrics``, ``/healthz``, ``/readyz`` and mounted handlers.

Served by uvicorn (h11) in a background thread, like the sidecar: standard HTTP/1.1
framing (chunked bodies; conflicting ``Content-Length`` headers and oversized heads
refused by h11), bounded concurrency (``max_connections``; more get 503), and
timeouts for slow clients (:mod:`monitor.http_asgi`). Handlers are plain functions:
they receive the request body and query and return (status, content type, body),
run on a bounded thread pool (they may block on the store), and never see the
socket.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.auth import CHALLENGE, UNAUTHORIZED_BODY, BearerAuth
from monitor.http_asgi import (
    MAX_HEAD_BYTES,
    BodyError,
    HeadTimeoutH11,
    head_too_large,
    header,
    read_body,
)

__all__ = ["Handler", "HttpServer", "Response"]

log = logging.getLogger(__name__)

Response = tuple[int, str, bytes]
Handler = Callable[[bytes, dict[str, list[str]]], Response]
_MAX_BODY = 4 * 1024 * 1024
_JSON = "application/json"


class HttpServer:
    """Serves metrics and health on ``host:port`` in a background thread.

    The socket is bound when the server is built (an address in use fails here,
    as :class:`OSError`); requests are served after :meth:`start`.

    Parameters
    ----------
    health, ready
        Callables returning ``(ok, details)``; details are shown as JSON.
    auth
        Checks the bearer token of every mounted route (and of ``/metrics`` when
        ``auth.metrics``); ``/healthz`` and ``/readyz`` stay open for probes. A
        request without the token gets 401 before its body is read.
    max_connections
        Connections and requests served at once; more are answered 503.
    body_timeout, head_timeout
        Seconds a client may pause while sending its body (then 408) or take to
        send a request head (then the connection is closed).
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        health: Callable[[], tuple[bool, dict[str, object]]],
        ready: Callable[[], tuple[bool, dict[str, object]]],
        auth: BearerAuth | None = None,
        *,
        max_connections: int = 64,
        body_timeout: float = 30.0,
        head_timeout: float = 10.0,
    ) -> None:
        self.registry = registry
        self.routes: dict[tuple[str, str], Handler] = {}
        self.auth = auth or BearerAuth(None)
        self.body_timeout = body_timeout
        self._health = health
        self._ready = ready
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host.strip("[]"), port))
        except OSError:
            self._socket.close()
            raise
        protocol = type("DriftdH11", (HeadTimeoutH11,), {"head_timeout": head_timeout})
        self._server = uvicorn.Server(uvicorn.Config(
            self._asgi, interface="asgi3", lifespan="off", log_level="warning", access_log=False,
            http=protocol, proxy_headers=False,
            limit_concurrency=max_connections, timeout_keep_alive=5, timeout_graceful_shutdown=5,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES, server_header=False, date_header=False,
        ))
        self._thread: threading.Thread | None = None

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        head_only = scope["method"] == "HEAD"
        method = "GET" if head_only else scope["method"]
        path = scope["path"]
        extra: list[tuple[bytes, bytes]] = []
        try:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"), max_num_fields=50)
        except ValueError:  # more than 50 fields
            query = None
        if query is None:
            status, content_type, payload = 400, _JSON, b'{"error":"too many query parameters"}'
        elif head_too_large(scope):
            status, content_type, payload = 431, _JSON, b'{"error":"request header fields too large"}'
            extra = [(b"connection", b"close")]
        else:
            authorization = header(scope, b"authorization")
            if not self.authorized(method, path, None if authorization is None else authorization.decode("latin-1")):
                # The body is not read; uvicorn closes the connection after the reply.
                status, content_type, payload = 401, _JSON, UNAUTHORIZED_BODY
                extra = [(b"www-authenticate", CHALLENGE.encode()), (b"connection", b"close")]
            else:
                status, content_type, payload = await self._respond(scope, receive, method, path, query)
        headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(payload)).encode()),
                   (b"x-content-type-options", b"nosniff"), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head_only else payload})

    async def _respond(self, scope: dict[str, Any], receive: Any, method: str, path: str,
                       query: dict[str, list[str]]) -> Response:
        body = b""
        if method == "POST" and (method, path) in self.routes:
            try:
                body = await read_body(scope, receive, max_bytes=_MAX_BODY, timeout=self.body_timeout)
            except BodyError as error:
                return error.status, _JSON, orjson.dumps({"error": error.reason})
        try:
            # Handlers block (store writes, registry collection): on the bounded default pool.
            return await asyncio.to_thread(self.handle, method, path, body, query)
        except Exception:
            log.exception("handler for %s %s failed", method, path)
            return 500, _JSON, b'{"error":"internal error"}'

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

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
        """Serve in a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="driftd-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
