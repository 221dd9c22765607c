"""A driftd metrics exposition without the daemon: the real registry, fed WindowReports.

``monitor.metrics.create_metrics()`` is the registry driftd serves on /metrics; this
helper fills it with the reports a drifting run produces and serves
``prometheus_client.generate_latest`` over a stdlib HTTP server, advancing the
pipeline counters in a thread so that rates are non-zero while Prometheus scrapes.
It exists to test the dashboards' queries against a real Prometheus before (and
independently of) the daemon end-to-end test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from detectors.base import DriftResult
from detectors.registry import REGISTRY
from monitor.metrics import CALIBRATION_STATISTICS, create_metrics
from monitor.results import AttributionSummary, MetricValue, WindowKey, WindowReport

MODELS = (("fraud", "v2", "region=eu"), ("fraud", "v2", "region=us"), ("churn", "v1", ""))
FEATURES = ("amount", "age", "country", "device")


def _report(key: WindowKey, window_end: float, drifting: bool) -> WindowReport:
    methods = sorted(REGISTRY)
    features = []
    for i, feature in enumerate(FEATURES):
        method = methods[i % len(methods)]
        threshold = REGISTRY[method].default_threshold
        score = threshold * (2.5 if drifting and i < 2 else 0.4)
        features.append(DriftResult(method, feature, score, 0.001 if score > threshold else 0.4,
                                    threshold, score > threshold))
    drifted = sum(r.drifted for r in features)
    perf = {"accuracy": MetricValue(0.81, 0.78, 0.84), "roc_auc": MetricValue(0.88, 0.85, 0.9)}
    return WindowReport(
        key=key, window_start=window_end - 60, window_end=window_end, n_events=500,
        features=features,
        prediction=[DriftResult(m, "__prediction__", 0.3, 0.01, REGISTRY[m].default_threshold, True)
                    for m in methods[:2]],
        label=[DriftResult(methods[0], "__label__", 0.05, 0.3, REGISTRY[methods[0]].default_threshold,
                           False)],
        drift_share=drifted / len(features), drift_score=0.4, model_drifted=drifted >= 2,
        missing_ratio={f: 0.02 for f in FEATURES}, baseline_missing_ratio={f: 0.01 for f in FEATURES},
        unseen_ratio={"country": 0.07},
        n_labels=300, performance=perf, baseline_performance={"accuracy": 0.9, "roc_auc": 0.93},
        estimated_performance={"accuracy": MetricValue(0.83), "roc_auc": MetricValue(0.9)},
        calibration={name: 0.1 for name in CALIBRATION_STATISTICS},
        baseline_calibration={name: 0.05 for name in CALIBRATION_STATISTICS},
        attribution=AttributionSummary(ndcg=0.7, drifted=True, threshold=0.9, n_explanations=40,
                                       mean_abs_shap={f: 0.1 for f in FEATURES},
                                       relative_change={f: 0.3 for f in FEATURES}),
    )


@contextmanager
def synthetic_driftd(tick: float = 0.2) -> Iterator[str]:
    """Serve a populated driftd registry on a free loopback port; yields ``host:port``."""
    registry, pipeline, windows = create_metrics(max_keys=50)
    stop = threading.Event()

    def advance() -> None:
        step = 0
        while not stop.is_set():
            now = time.time()
            for model, version, segment in MODELS:
                windows.publish(_report(WindowKey(model, version, segment), now, model == "fraud"))
                pipeline.events.labels(model=model, version=version).inc(50)
                pipeline.late_events.labels(model=model).inc(1)
                pipeline.windows_closed.labels(model=model).inc()
                pipeline.explanations.labels(model=model).inc(2)
                pipeline.explain_dropped.labels(model=model, reason="queue_full").inc()
            pipeline.invalid_events.labels(reason="schema").inc(2)
            pipeline.labels.labels(outcome="joined").inc(30)
            pipeline.store_errors.labels(operation="write_reports").inc()
            pipeline.window_close_delay.observe(0.8 + step % 3)
            pipeline.window_compute.observe(0.004)
            pipeline.batch_duration.observe(0.02)
            pipeline.explain_latency.observe(2.0)
            pipeline.consumer_lag.labels(topic="driftd.predictions", partition="0").set(120 + step)
            pipeline.assigned_partitions.set(1)
            pipeline.open_windows.set(3)
            pipeline.last_poll.set(now)
            pipeline.last_checkpoint.set(now)
            pipeline.ready.set(1)
            pipeline.explain_queue_depth.set(5)
            pipeline.explain_queue_capacity.set(100)
            pipeline.store_pending.set(4)
            step += 1
            stop.wait(tick)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = generate_latest(registry)
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threads = [threading.Thread(target=server.serve_forever, daemon=True),
               threading.Thread(target=advance, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        for thread in threads:
            thread.join(timeout=5)
