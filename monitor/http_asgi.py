"""The ASGI side of the daemon's HTTP port: framing, limits and timeouts.

uvicorn (with h11) parses HTTP/1.1: chunked bodies, and a request with two
different ``Content-Length`` values or a head over :data:`MAX_HEAD_BYTES` is
refused with 400 before the application sees it. This module adds what h11 leaves
to the server:

* :class:`HeadTimeoutH11` closes a connection whose request head has not arrived
  within ``head_timeout`` seconds (slowloris), on the first request and between
  keep-alive requests;
* :func:`head_too_large` bounds the head h11 parsed in one piece (431);
* :func:`read_body` refuses both ``Content-Length`` and ``Transfer-Encoding``
  (400), refuses a declared length over the limit (413, nothing read),
  stops reading a chunked body at the limit (413) and gives up on a client that
  stops sending (408).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["MAX_HEAD_BYTES", "BodyError", "HeadTimeoutH11", "head_too_large", "header", "read_body"]

MAX_HEAD_BYTES = 16 * 1024

Receive = Callable[[], Awaitable[dict[str, Any]]]


class BodyError(Exception):
    """A request body that cannot be used: ``status`` and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class HeadTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol, closing connections that send no complete head in time."""

    head_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        # Only while waiting for a request head; a request being served has its own limits.
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()  # the next keep-alive request's head

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)


def head_too_large(scope: dict[str, Any]) -> bool:
    """Whether the request's header fields exceed :data:`MAX_HEAD_BYTES`.

    h11 bounds only a head that arrives in pieces; one sent in a single write is
    parsed whatever its size.
    """
    return (
        sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ())) > MAX_HEAD_BYTES
    )


def header(scope: dict[str, Any], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case) of an ASGI scope."""
    return next((value for key, value in scope.get("headers", ()) if key == name), None)


async def read_body(
    scope: dict[str, Any], receive: Receive, *, max_bytes: int, timeout: float
) -> bytes:
    """The request body, at most ``max_bytes``, each part within ``timeout`` seconds.

    Raises
    ------
    BodyError
        413 for a declared or actual size over ``max_bytes``, 400 for a malformed
        length, 408 when the client stops sending.
    """
    declared = header(scope, b"content-length")
    if declared is not None and header(scope, b"transfer-encoding") is not None:
        # Allowed by RFC 9112 (chunked wins) but the stuff of request smuggling: refuse it.
        raise BodyError(400, "both Content-Length and Transfer-Encoding")
    if declared is not None:
        if not declared.isdigit():
            raise BodyError(400, "bad Content-Length")
        if int(declared) > max_bytes:
            raise BodyError(413, f"body larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            raise BodyError(408, f"no body data for {timeout:g} s") from None
        if message["type"] == "http.disconnect":
            raise BodyError(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyError(413, f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
