"""The driftd daemon: wires settings, store, pipeline, consumer and HTTP together.

``Daemon(settings).run_forever()`` is what ``driftd run`` does. Tests and the demo
use ``start()`` / ``stop()`` to run it in-process on a background thread.

SIGTERM or SIGINT: stop polling, close open windows (``windows.close_on_shutdown``),
write the results, checkpoint, commit offsets, exit 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from monitor.auth import BearerAuth, InsecureBind, is_loopback, require_token, resolve_token
from monitor.baselines import BaselineRegistry
from monitor.config import ConfigError, Settings
from monitor.consumer import Consumer
from monitor.http import HttpServer
from monitor.logs import WindowLog
from monitor.metrics import create_metrics
from monitor.pipeline import Pipeline
from monitor.results import WindowReport
from monitor.startup import log_startup

__all__ = ["Daemon"]

log = logging.getLogger(__name__)

# /healthz fails when the consumer loop has not come round for this long.
_STALL_SECONDS = 60.0


class Daemon:
    """One driftd process.

    Parameters
    ----------
    settings
        The validated settings.
    with_store
        Open the store (results, baselines, checkpoints). Off only for tests of the
        pure Kafka path.
    insecure
        Serve a non-loopback ``http.host`` without a token (``driftd run --insecure``).

    Raises
    ------
    ConfigError
        When ``http.auth`` names an unreadable token file, or ``http.host`` is not
        loopback, no token is set and ``insecure`` is false.
    """

    def __init__(self, settings: Settings, *, with_store: bool = True, insecure: bool = False) -> None:
        self.settings = settings
        auth = self._http_auth(settings, insecure)
        limits = settings.limits
        self.registry, self.metrics, self.collector = create_metrics(
            max_keys=limits.max_models * limits.max_segments_per_model * 4
        )
        self.store: Any = None
        self.writer: Any = None
        self.store_error: str | None = None
        if with_store:
            self._open_store()
        self.baselines = BaselineRegistry(
            settings,
            load_from_store=self.store.load_baseline if self.store is not None else None,
            save_to_store=(lambda b: self.store.save_baseline(b.model, b.version, b.to_dict())) if self.store is not None else None,
        )
        self.truth = self._ground_truth()
        self.explainer = self._explainer()
        self.retrain = self._retrain()
        self.pipeline = Pipeline(
            settings, self.metrics, self.collector, self.baselines,
            sinks=([self._store_report] if self.store is not None else []) + [WindowLog(settings.alerts.performance_tolerance)]
            + ([self.retrain] if self.retrain is not None else []),
            truth=self.truth, explainer=self.explainer,
            alarm_sinks=[self._store_alarms] if self.store is not None else [],
            stored_report=self._stored_report if self.store is not None else None,
        )
        self.consumer = Consumer(
            settings, self.pipeline, self.metrics,
            checkpoint_store=self.store,
            flush_outputs=self._flush_store if self.store is not None else None,
        )
        self._initialise_series()
        self.http = HttpServer(settings.http.host, settings.http.port, self.registry, self.health, self.ready, auth=auth)
        self._mount_receiver()
        self._thread: threading.Thread | None = None

    def _stored_report(self, key: Any, start: float) -> Any:
        """A closed window from the store, once the writer has written what it holds."""
        self.writer.flush(timeout=10)
        return self.store.window_report(key.model, key.version, key.segment, start)

    def _initialise_series(self) -> None:
        """Labelled counters exist from the start, so dashboards and rules see 0, not "no data"."""
        for operation in ("write_reports", "add_explanations", "add_alarms", "save_checkpoint", "migrate", "record_incident", "checkpoint", "window_report"):
            self.metrics.store_errors.labels(operation=operation)
        for outcome in ("joined", "early", "duplicate", "unknown"):
            self.metrics.labels.labels(outcome=outcome)
        for reason in ("ttl", "capacity"):
            self.metrics.label_join_evictions.labels(reason=reason)
        for model in self.settings.models:
            self.metrics.late_events.labels(model=model.name)
            self.metrics.sequential_excluded.labels(model=model.name)
        if self.explainer is not None:
            for model in self.settings.models:
                for reason in ("queue_full", "budget", "model_unavailable", "worker_error", "store_error"):
                    self.metrics.explain_dropped.labels(model=model.name, reason=reason)

    @staticmethod
    def _http_auth(settings: Settings, insecure: bool) -> BearerAuth:
        try:
            token = resolve_token(settings.http.auth, "http.auth")
            require_token(settings.http.host, token, insecure=insecure, key="http")
        except (InsecureBind, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        if token is None and not is_loopback(settings.http.host):
            log.warning("http.host %s without a token (--insecure): anyone who can reach the port "
                        "can create and resolve incidents", settings.http.host)
        return BearerAuth(token, metrics=settings.http.auth.metrics)

    # -- optional parts --------------------------------------------------------
    def _open_store(self) -> None:
        from monitor.store import StoreError, open_store
        from monitor.store.writer import StoreWriter

        try:
            # create=False: nothing touches the database yet, so a store that is down at
            # start does not stop the daemon; the writer creates the schema once it can.
            self.store = open_store(self.settings.store.url, create=False)
        except StoreError as exc:  # a malformed URL is a configuration error
            self.store_error = str(exc)
            raise
        self.writer = StoreWriter(
            self.store, metrics=self.metrics, batch_size=self.settings.store.write_batch_size, ensure_schema=True,
        )

    def _ground_truth(self) -> Any:
        if not self.settings.labels.enabled:
            return None
        try:
            from monitor.truth import GroundTruth
        except ImportError:
            log.info("ground truth unavailable (monitor.truth missing); labels are not joined")
            return None
        return GroundTruth(
            self.settings.labels,
            {m.name: m for m in self.settings.models},
            self.baselines.get,
            self.metrics,
            float(self.settings.windows.size_seconds),
        )

    def _explainer(self) -> Any:
        if not self.settings.explain.enabled:
            return None
        try:
            from explainers.service import ExplainService
        except ImportError as exc:
            log.warning("explanations disabled: %s", exc)
            return None
        return ExplainService(
            self.settings.explain,
            {m.name: m for m in self.settings.models},
            self.baselines.get,
            self.writer if self.writer is not None else self.store,
            self.metrics,
            kafka=self.settings.kafka,
        )

    def _retrain(self) -> Any:
        if not self.settings.retrain.enabled:
            return None
        if self.store is None:
            log.warning("retrain.enabled needs the store (cooldown and deduplication live there); no retrain requests")
            return None
        from monitor.retrain.service import RetrainService

        return RetrainService(self.settings, self.store, self.metrics)

    def _mount_receiver(self) -> None:
        if self.store is None:
            return
        try:
            from alerts.receiver import handle_webhook
        except ImportError:
            return
        store = self.store

        def receive(body: bytes, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
            status, payload = handle_webhook(body, store.session, metrics=self.metrics)
            return status, "application/json", payload

        self.http.route("POST", "/api/v1/alerts", receive)

    # -- store ---------------------------------------------------------------
    def _store_report(self, report: WindowReport) -> None:
        if self.writer is not None:
            self.writer.write_reports([report])
            return
        try:
            self.store.write_reports([report])
        except Exception as exc:  # noqa: BLE001 - counted; the checkpoint waits for the store
            self.metrics.store_errors.labels(operation="write_reports").inc()
            log.warning("could not store window report: %s", exc)

    def _store_alarms(self, alarms: list[Any]) -> None:
        if self.writer is not None:
            self.writer.add_alarms(alarms)
            return
        try:
            self.store.add_alarms(alarms)
        except Exception as exc:  # noqa: BLE001 - counted and logged
            self.metrics.store_errors.labels(operation="add_alarms").inc()
            log.warning("could not store %d sequential alarm(s): %s", len(alarms), exc)

    def _flush_store(self) -> bool:
        if self.writer is None:
            return True
        return bool(self.writer.flush(timeout=2.0))

    # -- health ----------------------------------------------------------------
    def health(self) -> tuple[bool, dict[str, object]]:
        alive = self._thread is not None and self._thread.is_alive()
        stalled = time.time() - self.consumer.last_loop > _STALL_SECONDS
        return alive and not stalled, {"consumer_thread": alive, "stalled": stalled}

    def ready(self) -> tuple[bool, dict[str, object]]:
        store_ok = self.store is not None and (self.writer is None or bool(getattr(self.writer, "healthy", True)))
        details: dict[str, object] = {
            "kafka_connected": self.consumer.connected,
            "partitions_assigned": len(self.consumer.rebalance.assigned),
            "store_ok": store_ok,
        }
        if self.consumer.state_error is not None:
            details["state_error"] = self.consumer.state_error
        ok = self.consumer.ready and store_ok
        self.metrics.ready.set(1 if ok else 0)
        return ok, details

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> Daemon:
        """Start the HTTP server and the consumer thread."""
        self.http.start()
        self._thread = threading.Thread(target=self.consumer.run, name="driftd-consumer", daemon=True)
        self._thread.start()
        if self.retrain is not None:
            self.retrain.start()
        log.info("driftd listening on http://%s:%d (metrics, healthz, readyz)", self.settings.http.host, self.http.port)
        log_startup(self.settings, self.store.engine.url.render_as_string(hide_password=True) if self.store is not None else "(none)")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop consuming, close windows, flush, checkpoint, stop serving."""
        self.consumer.stop()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self.explainer is not None:
            self.explainer.close()
        if self.retrain is not None:
            self.retrain.close()
        if self.writer is not None:
            self.writer.close()
        self.http.stop()
        if self.store is not None:
            self.store.close()

    def reports(self) -> list[WindowReport]:
        """Latest report of every (model, version, segment)."""
        return self.collector.reports()

    def run_forever(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit code."""
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("signal %d: shutting down", signum)
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        while not stop.wait(1.0):
            if self._thread is not None and not self._thread.is_alive():
                log.error("consumer thread ended unexpectedly")
                break
        self.stop()
        return 0
