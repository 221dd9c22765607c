"""The retrain sink: window reports → trigger → store (cooldown) → topic and webhook.

:class:`RetrainService` is one of the pipeline's sinks. On the consumer thread it only
folds the report into the :class:`~monitor.retrain.trigger.RetrainTrigger` and, when a
key decides, hands the decision to a bounded queue; a background thread does the I/O,
so a slow broker or webhook never stalls ingest. For each decision, in this order:

1. insert the request row in the store, inside the per-model cooldown check
   (:meth:`monitor.store.Store.insert_retrain_request`); a model in its cooldown gets
   no row and nothing is sent — across restarts and daemons, since the check is in
   the shared store;
2. after the commit, publish the event to ``retrain.topic`` and wait for the broker;
3. mark the row published, then POST the webhook (best effort, one try).

A request whose publish failed, or whose daemon died between 1 and 3, stays
unpublished in the store; every daemon claims such rows once their claim is older
than ``retrain.republish_after_seconds`` and publishes them (so a request is lost
only with the store). Decisions the store could not take are retried on the next
tick, at most :data:`MAX_PENDING` of them. At start the worker folds the newest
stored windows of each key into the trigger (:meth:`RetrainService.seed_from_store`),
so that a run of drifted windows survives a restart.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config import Settings
from monitor.logs import log_event
from monitor.results import WindowReport
from monitor.retrain.emitter import EmitError, KafkaEmitter, post_webhook
from monitor.retrain.request import build_request
from monitor.retrain.trigger import REASONS, RetrainDecision, RetrainTrigger

__all__ = ["MAX_PENDING", "RetrainService"]

log = logging.getLogger(__name__)

MAX_PENDING = 100
_STAGES = ("store", "kafka", "webhook", "queue")


class RetrainService:
    """Emit retrain requests for the reports of one daemon.

    Parameters
    ----------
    settings
        The daemon's settings (``retrain``, ``kafka``, ``app.url``, ``alerts.performance_tolerance``).
    store
        A :class:`monitor.store.Store` (shared by every daemon of the deployment).
    metrics
        :class:`monitor.metrics.PipelineMetrics` (``retrain_requests``, ``retrain_failures``).
    emitter
        Something with ``send(model, payload)`` and ``close()``; a :class:`KafkaEmitter`
        on ``retrain.topic`` unless given (tests).
    now
        The wall clock (tests).
    """

    def __init__(
        self,
        settings: Settings,
        store: Any,
        metrics: Any,
        *,
        emitter: Any = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = settings.retrain
        self.app_url = settings.app.url
        self.tolerance = settings.alerts.performance_tolerance
        self.store = store
        self.metrics = metrics
        self.emitter = emitter if emitter is not None else KafkaEmitter(
            settings.kafka, self.config.topic, self.config.publish_timeout_seconds
        )
        self.now = now
        self.trigger = RetrainTrigger(
            consecutive_windows=self.config.consecutive_windows,
            drift_trigger=self.config.drift_trigger,
            performance_trigger=self.config.performance_trigger,
            performance_tolerance=self.tolerance,
            min_labels=self.config.min_labels,
            max_keys=settings.limits.max_models * settings.limits.max_segments_per_model * settings.limits.max_versions_per_model,
        )
        self._queue: queue.Queue[RetrainDecision] = queue.Queue(maxsize=MAX_PENDING)
        self._pending: list[RetrainDecision] = []
        # model -> wall-clock end of its cooldown as last seen in the store (saves a query per window).
        self._cooling: dict[str, datetime] = {}
        self.window_seconds = float(settings.windows.size_seconds)
        self.model_names = [m.name for m in settings.models]
        # The trigger is folded on the consumer thread and seeded on the worker's.
        self._trigger_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for stage in _STAGES:
            metrics.retrain_failures.labels(stage=stage)
        for model in settings.models:
            for reason in REASONS:
                metrics.retrain_requests.labels(model=model.name, reason=reason)

    # -- the sink (consumer thread) --------------------------------------------------
    def __call__(self, report: WindowReport) -> None:
        """Fold one new or updated report in; queue a decision for the worker."""
        with self._trigger_lock:
            decision = self.trigger.update(report)
        if decision is not None:
            self._enqueue(decision)

    def _enqueue(self, decision: RetrainDecision) -> None:
        until = self._cooling.get(decision.key.model)
        if until is not None and self.now() < until:
            return
        try:
            self._queue.put_nowait(decision)
        except queue.Full:
            self.metrics.retrain_failures.labels(stage="queue").inc()

    # -- the worker ------------------------------------------------------------------
    def start(self) -> RetrainService:
        """Start the background thread (it publishes requests left unpublished first)."""
        self._thread = threading.Thread(target=self._run, name="driftd-retrain", daemon=True)
        self._thread.start()
        return self

    def seed_from_store(self) -> int:
        """Fold the newest stored windows of each key in, so that a run of drifted windows
        survives a restart; returns how many windows were folded.

        Windows the consumer already passed are ignored by the trigger (it keeps the
        newest start per key), so seeding late is harmless.
        """
        from monitor.store import StoreError

        depth = self.config.consecutive_windows
        folded = 0
        try:
            newest = [r for r in self.store.newest_window_rows() if r["model"] in self.model_names]
            for row in newest:
                since = row["window_start"].timestamp() - depth * self.window_seconds
                rows = self.store.window_rows(row["model"], row["version"], row["segment"], since, light=True)
                for stored in rows[-depth:]:
                    report = self.store.window_report(row["model"], row["version"], row["segment"], stored["window_start"])
                    if report is None:
                        continue
                    with self._trigger_lock:
                        decision = self.trigger.update(report)
                    folded += 1
                    if decision is not None:
                        self._enqueue(decision)
        except StoreError as exc:  # an empty or unreachable store: nothing to resume
            log.info("retrain trigger not seeded from the store: %s", exc)
        return folded

    def _run(self) -> None:
        self.seed_from_store()
        tick = min(5.0, self.config.republish_after_seconds / 2)
        last_republish = -float("inf")
        while not self._stop.is_set():
            if time.monotonic() - last_republish >= tick:
                last_republish = time.monotonic()
                self.republish()
                self._retry_pending()
            try:
                decision = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.handle(decision)

    def _retry_pending(self) -> None:
        pending, self._pending = self._pending, []
        for decision in pending:
            self.handle(decision)

    def handle(self, decision: RetrainDecision) -> bool:
        """Store and publish ``decision`` unless its model is in its cooldown; True when emitted."""
        from monitor.store import StoreError

        model, now = decision.key.model, self.now()
        until = self._cooling.get(model)
        if until is not None and now < until:
            return False
        cooldown = float(self.config.cooldown_seconds)
        try:
            record, held_since = self.store.insert_retrain_request(
                model=model, version=decision.key.version, segment=decision.key.segment,
                reason=decision.reason, now=now, cooldown_seconds=cooldown,
                build_payload=lambda request_id, created_at: build_request(
                    decision, request_id, created_at, app_url=self.app_url,
                    cooldown_seconds=cooldown, performance_tolerance=self.tolerance,
                ),
            )
        except StoreError as exc:
            self.metrics.retrain_failures.labels(stage="store").inc()
            log.warning("retrain request for %s not stored yet (retried): %s", model, exc)
            if len(self._pending) < MAX_PENDING:
                self._pending.append(decision)
            return False
        if record is None:
            self._cooling[model] = held_since + timedelta(seconds=cooldown)
            log_event(
                log, logging.INFO, "retrain_held",
                "retrain for %s %s (%s) held by the cooldown: a request was made at %s", model,
                decision.key.version, decision.reason, held_since.isoformat(timespec="seconds"),
                model=model, reason=decision.reason,
            )
            return False
        self._cooling[model] = now + timedelta(seconds=cooldown)
        self.metrics.retrain_requests.labels(model=model, reason=decision.reason).inc()
        log_event(
            log, logging.WARNING, "retrain_requested",
            "retrain requested for %s %s%s: %s (request %d, %s)", model, decision.key.version,
            f" [{decision.key.segment}]" if decision.key.segment else "", decision.reason, record.id, record.request_id,
            model=model, version=decision.key.version, segment=decision.key.segment,
            reason=decision.reason, request_id=record.request_id,
        )
        self.publish(record)
        return True

    def publish(self, record: Any) -> bool:
        """Send a stored request to the topic, mark it published, then call the webhook."""
        from monitor.store import StoreError

        try:
            self.emitter.send(record.model, record.payload)
        except EmitError as exc:
            self.metrics.retrain_failures.labels(stage="kafka").inc()
            log.warning("%s; published again in %.0f s", exc, self.config.republish_after_seconds)
            return False
        try:
            self.store.mark_retrain_published(record.request_id, self.now())
        except StoreError as exc:
            self.metrics.retrain_failures.labels(stage="store").inc()
            log.warning("retrain request %s published but not marked (may be sent again): %s", record.request_id, exc)
        if self.config.webhook_url:
            try:
                post_webhook(self.config.webhook_url, record.payload, self.config.webhook_timeout_seconds)
            except EmitError as exc:
                self.metrics.retrain_failures.labels(stage="webhook").inc()
                log.warning("retrain request %s: %s", record.request_id, exc)
        return True

    def republish(self) -> int:
        """Publish stored requests that never reached the topic (claimed past the lease)."""
        from monitor.store import StoreError

        try:
            records = self.store.claim_unpublished_retrain(self.now(), self.config.republish_after_seconds)
        except StoreError:
            return 0  # not migrated or unreachable yet: the next tick tries again
        return sum(self.publish(record) for record in records)

    def close(self, timeout: float = 10.0) -> None:
        """Handle what is queued (bounded by ``timeout``), stop the thread, close the producer."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        while time.monotonic() < deadline:
            try:
                self.handle(self._queue.get_nowait())
            except queue.Empty:
                break
        self.emitter.close()
