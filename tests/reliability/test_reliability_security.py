"""Security properties that can be checked without an attacker: bind address, HTTP
input limits, no code execution from data, parameterised SQL, names that cannot
escape the baseline directory.
"""

from __future__ import annotations

import http.client
import re
import socket
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.baselines import BaselineRegistry
from monitor.config import load_settings
from monitor.http import HttpServer
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.simulate import Scenario, encode, prediction_events

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("monitor", "detectors", "explainers", "dashboards", "alerts")
T0 = 1_767_225_600.0


def ok() -> tuple[bool, dict[str, object]]:
    return True, {}


@pytest.fixture
def server():
    http_server = HttpServer("127.0.0.1", 0, CollectorRegistry(), ok, ok)
    http_server.route("POST", "/api/v1/alerts", lambda body, query: (200, "application/json", b'{"ok":true}'))
    http_server.start()
    yield http_server
    http_server.stop()


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            host: str = "127.0.0.1") -> int:
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


def test_http_binds_only_the_configured_address() -> None:
    http_server = HttpServer("127.0.0.2", 0, CollectorRegistry(), ok, ok).start()
    try:
        assert request(http_server.port, "GET", "/healthz", host="127.0.0.2") == 200
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", http_server.port), timeout=2).close()
    finally:
        http_server.stop()
    assert load_settings(None).http.host == "127.0.0.1"  # loopback unless told otherwise


def test_http_rejects_unknown_paths_wrong_methods_and_big_bodies(server: HttpServer) -> None:
    port = server.port
    assert request(port, "GET", "/metrics") == 200
    assert request(port, "GET", "/admin") == 404
    assert request(port, "GET", "/../../etc/passwd") == 404
    assert request(port, "POST", "/metrics", b"{}") == 405
    assert request(port, "GET", "/api/v1/alerts") == 405
    assert request(port, "POST", "/api/v1/alerts", b"{}") == 200
    # The declared length is refused before anything is read.
    assert request(port, "POST", "/api/v1/alerts", b"x", {"Content-Length": str(64 * 1024 * 1024)}) == 413
    assert request(port, "POST", "/api/v1/alerts", b"x", {"Content-Length": "-5"}) == 400


def test_http_does_not_wait_forever_for_a_stalled_client() -> None:
    """A client that announces a body and never sends it must not hold the server forever."""
    server = HttpServer("127.0.0.1", 0, CollectorRegistry(), ok, ok, body_timeout=1.0, head_timeout=1.0)
    server.route("POST", "/api/v1/alerts", lambda body, query: (200, "application/json", b"{}"))
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{")
            assert sock.recv(4096).startswith(b"HTTP/1.1 408 ")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # the head never ends
            assert sock.recv(4096) == b""  # closed by the server
    finally:
        server.stop()


def python_sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


# The explicit trust path: model files that are pickles load only with trust_pickle.
TRUSTED = {"explainers/loading.py"}


def test_no_eval_exec_or_unpickling_outside_the_trust_path() -> None:
    pattern = re.compile(r"(?<![\w.])(eval|exec)\(|pickle\.loads?\(|joblib\.load\(|cloudpickle\.loads?\(|marshal\.loads\(|yaml\.load\(|yaml\.unsafe_load\(")
    offenders = []
    for path in python_sources():
        relative = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and relative not in TRUSTED:
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_unpickling_in_the_trust_path_is_gated_by_the_flag() -> None:
    gated = []
    for path in python_sources():
        text = path.read_text(encoding="utf-8")
        if re.search(r"pickle\.loads?\(|joblib\.load\(", text):
            gated.append((path.relative_to(ROOT).as_posix(), "trust_pickle" in text))
    assert gated and all(flag for _, flag in gated), gated


def test_sql_only_through_parameters() -> None:
    """No SQL assembled from strings: text() with f-strings, % or + or .format is refused."""
    pattern = re.compile(r"""text\(\s*(f["']|["'][^"']*["']\s*(%|\+|\.format))|exec_driver_sql\(\s*f["']|execute\(\s*f["']""")
    offenders = []
    for path in python_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            # Interpolating only module constants (UPPER_CASE) is not injection.
            names = re.findall(r"\{([^}:!]+)", line)
            if pattern.search(line) and not (names and all(re.fullmatch(r"[A-Z][A-Z0-9_]*", n) for n in names)):
                offenders.append(f"{path.relative_to(ROOT).as_posix()}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("field, value", [("model_version", "../../escaped"), ("model", "../../escaped")])
def test_event_names_cannot_escape_the_baseline_directory(tmp_path: Path, field: str, value: str) -> None:
    """Learned baselines are written under baseline_dir/<model>/<version>.json: names from
    events must not walk out of it (the schema's name pattern must hold on the fast path)."""
    baseline_dir = tmp_path / "a" / "b" / "baselines"
    settings = load_settings(None, models=[] if field == "model" else [{"name": "credit"}], baseline_dir=str(baseline_dir),
                             learn_baseline_events=100, labels={"enabled": False})
    _, metrics, collector = create_metrics(100)
    pipeline = Pipeline(settings, metrics, collector, BaselineRegistry(settings))
    events, _ = prediction_events(Scenario(model="credit"), T0, 300, 10.0)
    for event in events:
        event[field] = value
    rejected = pipeline.process_predictions(list(encode(events)))
    written = [p for p in tmp_path.rglob("*.json") if baseline_dir not in p.parents]
    assert not written, f"{field}={value!r} wrote {written}"
    assert len(rejected) == 300 and {r.reason for r in rejected} == {"schema"}
