"""The HTTP sidecar: an ASGI application in front of a :class:`PredictionLogger`.

Endpoints (described in ``schemas/openapi.sidecar.json``, served at ``/openapi.json``):

``POST /v1/predictions``, ``POST /v1/labels``
    One event (a JSON object) or a batch (a JSON array of objects).

    * ``202``: every event accepted into the buffer.
    * ``400``: some events break the contract; ``errors`` lists index, reason and
      detail of each. The *valid* events of the batch were accepted (``accepted``
      says how many), so the request must not be retried as a whole.
    * ``413``: the body is larger than ``max_body_bytes``.
    * ``429`` (buffer full, Kafka slow) and ``503`` (buffer full, Kafka unreachable):
      nothing was accepted; retry the whole request after ``Retry-After`` seconds.

    While Kafka is unreachable but the buffer has room, events are still accepted
    (``202``) and delivered when Kafka returns.

``GET /healthz`` (the delivery thread is alive), ``GET /readyz`` (Kafka reachable and
buffer not full), ``GET /metrics`` (own registry), ``GET /openapi.json``.

A raw ASGI callable rather than a framework: the per-request work is a dict lookup,
and framework routing costs more than validating an event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.auth import CHALLENGE, UNAUTHORIZED_BODY, BearerAuth
from monitor.events import SCHEMA, TOO_LARGE
from monitor.http_asgi import HeadTimeoutH11
from monitor.sidecar.client import PredictionLogger
from monitor.sidecar.errors import InvalidEvent
from monitor.sidecar.metrics import SidecarMetrics
from monitor.sidecar.openapi import MAX_BATCH_EVENTS, openapi_document

__all__ = ["SidecarApp", "SidecarServer"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Response = tuple[int, bytes, list[tuple[bytes, bytes]]]

_JSON = [(b"content-type", b"application/json")]
_MAX_ERRORS_SHOWN = 100
BUFFER_FULL = "buffer_full"
KAFKA_UNAVAILABLE = "kafka_unavailable"


def _json(status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    return status, orjson.dumps(payload), _JSON + (headers or [])


class SidecarApp:
    """ASGI application serving the sidecar endpoints for ``logger``.

    Parameters
    ----------
    logger
        Validates, buffers and delivers the events.
    max_body_bytes
        Larger request bodies get ``413`` without being read to the end.
    max_batch_events
        Most events per request.
    retry_after_s
        ``Retry-After`` for ``429``; ``503`` says twice as long.
    auth
        Bearer token of the ``POST`` endpoints (and of ``/metrics`` when
        ``auth.metrics``); without it they answer ``401`` before the body is read.
    """

    def __init__(
        self,
        logger: PredictionLogger,
        *,
        max_body_bytes: int = 16 * 1024 * 1024,
        max_batch_events: int = MAX_BATCH_EVENTS,
        retry_after_s: int = 1,
        auth: BearerAuth | None = None,
    ) -> None:
        self.logger = logger
        self.auth = auth or BearerAuth(None)
        self.max_body_bytes = max_body_bytes
        self.max_batch_events = max_batch_events
        self.retry_after_s = retry_after_s
        self.metrics = SidecarMetrics(logger)
        self._openapi = orjson.dumps(openapi_document())
        self._routes: dict[tuple[str, str], Callable[[bytes], Response]] = {
            ("POST", "/v1/predictions"): lambda body: self._ingest(body, logger.encode_prediction),
            ("POST", "/v1/labels"): lambda body: self._ingest(body, logger.encode_label),
            ("GET", "/healthz"): lambda _: self._healthz(),
            ("GET", "/readyz"): lambda _: self._readyz(),
            ("GET", "/metrics"): lambda _: (
                200, generate_latest(self.metrics.registry), [(b"content-type", CONTENT_TYPE_LATEST.encode())]
            ),
            ("GET", "/openapi.json"): lambda _: (200, self._openapi, list(_JSON)),
        }
        self._paths = {path for _, path in self._routes}

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        method = scope["method"]
        handler = self._routes.get((method, path))
        if handler is None:
            if path in self._paths:
                allowed = ", ".join(m for m, p in self._routes if p == path)
                response = _json(405, {"error": "method_not_allowed", "detail": f"use {allowed}"},
                                 [(b"allow", allowed.encode())])
            else:
                response = _json(404, {"error": "not_found", "detail": f"no endpoint {path[:100]}"})
        elif not self._authorized(method, path, scope):
            response = 401, UNAUTHORIZED_BODY, [*_JSON, (b"www-authenticate", CHALLENGE.encode())]
        else:
            body = await self._read_body(receive) if method == "POST" else b""
            if body is None:
                response = _json(413, {"error": TOO_LARGE, "detail": f"body larger than {self.max_body_bytes} bytes"})
            else:
                response = handler(body)
        status, content, headers = response
        self.metrics.request(path, status)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, (b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    def _authorized(self, method: str, path: str, scope: dict[str, Any]) -> bool:
        if not self.auth.enabled or (method == "GET" and (path != "/metrics" or not self.auth.metrics)):
            return True
        header = next((value for name, value in scope.get("headers", ()) if name == b"authorization"), None)
        return self.auth.allows(header)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _ingest(self, body: bytes, encode: Callable[[dict[str, Any]], Any]) -> Response:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            self.logger.outbox.count_rejected("not_json")
            return _json(400, {"error": "not_json", "detail": str(exc)[:200]})
        events = parsed if isinstance(parsed, list) else [parsed]
        if not events:
            return _json(400, {"error": SCHEMA, "detail": "empty batch: send at least one event"})
        if len(events) > self.max_batch_events:
            return _json(400, {"error": SCHEMA,
                               "detail": f"{len(events)} events in one request (max {self.max_batch_events})"})
        records = []
        errors = []
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                self.logger.outbox.count_rejected(SCHEMA)
                errors.append({"index": index, "reason": SCHEMA,
                               "detail": f"an event must be a JSON object, got {type(event).__name__}"})
                continue
            try:
                records.append(encode(event))
            except InvalidEvent as exc:
                errors.append({"index": index, "reason": exc.reason, "detail": exc.detail})
        outbox = self.logger.outbox
        if records and not outbox.offer_all(records):
            ready = outbox.ready
            reason = BUFFER_FULL if ready else KAFKA_UNAVAILABLE
            outbox.count_rejected(reason, len(records))
            retry_after = self.retry_after_s if ready else 2 * self.retry_after_s
            # Kafka's error (broker addresses) stays in the sidecar's log and /metrics.
            detail = "buffer full, Kafka is slow" if ready else "buffer full, Kafka unreachable"
            return _json(429 if ready else 503,
                         {"error": reason, "detail": detail, "accepted": 0, "rejected": len(events),
                          "errors": errors[:_MAX_ERRORS_SHOWN]},
                         [(b"retry-after", str(retry_after).encode())])
        if errors:
            return _json(400, {"error": "invalid_events", "accepted": len(records), "rejected": len(errors),
                               "errors": errors[:_MAX_ERRORS_SHOWN]})
        return _json(202, {"accepted": len(records)})

    def _healthz(self) -> Response:
        alive = self.logger.outbox.alive
        return _json(200 if alive else 503, {"healthy": alive})

    def _readyz(self) -> Response:
        stats = self.logger.stats()
        problem = None
        if not stats.ready:
            problem = "Kafka not reachable" if stats.last_error else "Kafka not reachable: connecting"
        elif self.logger.outbox.fill_ratio() >= 0.99:
            problem = "buffer full"
        payload = {"ready": problem is None, "buffered": stats.buffered, "capacity": stats.capacity}
        if problem:
            payload["reason"] = problem
        return _json(200 if problem is None else 503, payload)


async def _lifespan(receive: Receive, send: Send) -> None:
    # The CLI owns the logger's lifecycle; lifespan events are acknowledged only.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class SidecarServer(uvicorn.Server):
    """uvicorn serving a :class:`SidecarApp`, calling ``on_stop`` after the last request.

    uvicorn re-raises SIGTERM/SIGINT once it has stopped serving, which would end the
    process with events still in the buffer; ``on_stop`` (deliver and close the
    logger) runs before that.
    """

    def __init__(self, app: SidecarApp, *, host: str, port: int, on_stop: Callable[[], None] | None = None) -> None:
        super().__init__(uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False,
            lifespan="on", timeout_graceful_shutdown=5,
            # h11 with a deadline for request heads: slow clients are cut off (slowloris).
            http=HeadTimeoutH11, proxy_headers=False,
        ))
        self.on_stop = on_stop

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                if self.on_stop is not None:
                    self.on_stop()
