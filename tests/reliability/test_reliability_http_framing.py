"""The daemon's HTTP port on uvicorn: chunked bodies, duplicate Content-Length,
oversized heads and bodies, slow clients and bounded concurrency, over raw sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from monitor.http import HttpServer


def ok() -> tuple[bool, dict[str, object]]:
    return True, {}


@pytest.fixture
def received() -> list[bytes]:
    return []


@pytest.fixture
def server(received: list[bytes]):
    http_server = HttpServer(
        "127.0.0.1",
        0,
        CollectorRegistry(),
        ok,
        ok,
        max_connections=8,
        body_timeout=1.0,
        head_timeout=1.5,
    )

    def handler(body: bytes, query: dict) -> tuple[int, str, bytes]:
        received.append(body)
        return 200, "application/json", b'{"ok":true}'

    def slow(body: bytes, query: dict) -> tuple[int, str, bytes]:
        time.sleep(1.5)
        return 200, "application/json", b"{}"

    http_server.route("POST", "/api/v1/alerts", handler)
    http_server.route("POST", "/slow", slow)
    http_server.start()
    yield http_server
    http_server.stop()


def exchange(port: int, raw: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply else 0


def test_chunked_bodies_are_read(server: HttpServer, received: list[bytes]) -> None:
    body = b'{"version": "4"}'
    chunks = (
        b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:]))
        + b"0\r\n\r\n"
    )
    reply = exchange(
        server.port,
        b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks,
    )
    assert status(reply) == 200 and received == [body]


def test_duplicate_content_length(server: HttpServer, received: list[bytes]) -> None:
    # Two different lengths: request smuggling material; h11 refuses it.
    conflicting = b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 12\r\n\r\n{}"
    assert status(exchange(server.port, conflicting)) == 400
    # Both Content-Length and chunked: refused too.
    both = (
        b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n"
    )
    assert status(exchange(server.port, both)) in (400, 501)
    assert received == []
    # The same length twice is one length (RFC 9110 section 8.6).
    same = b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"
    assert status(exchange(server.port, same)) == 200 and received == [b"{}"]


def test_oversized_heads_and_bodies(server: HttpServer, received: list[bytes]) -> None:
    huge_header = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n"
    assert status(exchange(server.port, huge_header)) in (0, 400, 431)
    declared = b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n{"
    assert status(exchange(server.port, declared)) == 413  # refused before reading
    chunk = b"a" * 1_048_576
    big_chunked = (
        b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 5
        + b"0\r\n\r\n"
    )
    assert status(exchange(server.port, big_chunked)) == 413  # counted while reading
    assert (
        status(
            exchange(
                server.port,
                b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            )
        )
        == 400
    )
    assert received == []


def test_slow_connections_are_cut_off(server: HttpServer) -> None:
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        for _ in range(10):  # one header byte a while: slowloris
            try:
                sock.sendall(b"X")
            except OSError:
                break
            time.sleep(0.3)
        assert sock.recv(4096) == b""
    assert time.monotonic() - began < 6
    stalled_body = b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    assert status(exchange(server.port, stalled_body)) == 408
    # Between keep-alive requests too: the next head must come in time.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /heal")
        time.sleep(0.2)
        sock.sendall(b"t")
        assert sock.recv(4096) == b""


def test_concurrency_is_bounded(server: HttpServer) -> None:
    replies: list[int] = []

    def call() -> None:
        replies.append(
            status(
                exchange(
                    server.port, b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
                )
            )
        )

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(set(replies)) == [200, 503], replies
    assert 0 < replies.count(200) <= 8
    assert (
        status(exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")) == 200
    )  # recovered
