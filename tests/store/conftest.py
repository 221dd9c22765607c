"""Fixtures of the store tests: the same suite on SQLite and on PostgreSQL.

``store_url`` is parametrised over both databases (PostgreSQL through the
``pg_schema_url`` fixture: a private schema per test). ``TcpProxy`` sits between
a store and the real PostgreSQL so that a test can make the database unreachable
(connection refused, live connections cut) and bring it back on the same port.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from monitor.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'driftd.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def store(store_url) -> Iterator[Store]:
    store = open_store(store_url)
    try:
        yield store
    finally:
        store.close()


class TcpProxy:
    """A loopback TCP forwarder that can refuse, cut or freeze connections on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._flowing = threading.Event()
        self._flowing.set()
        self._stopped = threading.Event()

    def pause(self) -> None:
        """Keep connections open but forward nothing: a paused (SIGSTOP) server."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def start(self) -> TcpProxy:
        self._stopped.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        self._spawn(self._accept, listener)
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        self._stopped.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not,
            # and the kernel would keep accepting on the port.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(5)
        self._threads = [t for t in self._threads if t.is_alive()]

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                # Bounded wait: stop() ends a pause too.
                while not self._flowing.wait(0.05):
                    if self._stopped.is_set():
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def pg_proxy(pg_schema_url) -> Iterator[tuple[TcpProxy, str]]:
    """A started proxy to the test PostgreSQL and the schema URL that goes through it."""
    parts = urlsplit(pg_schema_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0] + "@" if len(netloc) == 2 else ""
    url = urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))
    try:
        yield proxy, url
    finally:
        proxy.stop()


def build_report(
    model: str = "churn",
    version: str = "1",
    segment: str = "",
    window_start: float = 1_767_225_600.0,  # 2026-01-01T00:00:00Z
    n_features: int = 5,
    seed: int = 0,
    size: float = 300.0,
):
    """A filled-in WindowReport with numpy values, NaNs and every section populated."""
    import numpy as np

    from detectors.base import DriftResult
    from monitor.results import (
        LABEL,
        PREDICTION,
        AttributionSummary,
        MetricValue,
        WindowKey,
        WindowReport,
    )

    rng = np.random.default_rng(seed)
    names = [f"f{i:03d}" for i in range(n_features)]
    scores = rng.uniform(0, 0.5, n_features)
    features = [
        DriftResult(
            method="psi" if i % 2 else "ks",
            feature=name,
            score=float("nan") if i == 1 else np.float64(scores[i]),
            p_value=None if i % 2 else float(rng.uniform()),
            threshold=0.2,
            drifted=np.bool_(scores[i] > 0.2 and i != 1),
        )
        for i, name in enumerate(names)
    ]
    report = WindowReport(
        key=WindowKey(model, version, segment),
        window_start=window_start,
        window_end=window_start + size,
        n_events=int(rng.integers(100, 10_000)),
        features=features,
        prediction=[DriftResult("jensen_shannon", PREDICTION, 0.05, None, 0.1, False)],
        label=[DriftResult("chi_square", LABEL, 12.5, 0.001, 0.1, True)],
        drift_share=float(np.mean([r.drifted for r in features])),
        drift_score=0.4,
        model_drifted=True,
        missing_ratio={name: float(rng.uniform(0, 0.1)) for name in names},
        unseen_ratio={names[-1]: 0.25},
        feature_counts={name: rng.integers(0, 100, 10) for name in names}
        | {PREDICTION: np.array([5, 7])},
        feature_kinds={name: "numeric" for name in names[:-1]}
        | {names[-1]: "categorical", PREDICTION: "categorical", LABEL: "categorical"},
        closed_at=window_start + size + 61.5,
        n_labels=42,
        performance={"f1": MetricValue(0.81, 0.7, 0.9), "roc_auc": MetricValue(0.9)},
        baseline_performance={"f1": 0.85},
        estimated_performance={"f1": MetricValue(0.8, 0.75, 0.85)},
        calibration={"ece_equal_width": 0.03, "brier_score": 0.12},
        baseline_calibration={"ece_equal_width": 0.02},
        attribution=AttributionSummary(
            ndcg=0.93, drifted=False, threshold=0.9, n_explanations=17,
            mean_abs_shap={names[0]: 0.4}, relative_change={names[0]: float("nan")},
        ),
    )
    return report


@pytest.fixture
def make_report():
    return build_report
