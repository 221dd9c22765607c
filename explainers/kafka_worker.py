"""``driftd explain-worker``: explain tasks from Kafka as a consumer group, write to the store.

With ``explain.mode: kafka`` the daemon publishes explanation tasks to
``kafka.explain_topic`` (:mod:`explainers.publisher`). Any number of
:class:`TaskWorker` processes, on any machine, consume that topic in the consumer
group ``kafka.explain_group_id``: Kafka gives each partition to one of them, so the
topic's partition count is the most workers that can be busy at once.

One task at a time, in this order (at-least-once, idempotent):

1. ``poll`` one task (``max_poll_records=1``: a worker holds no task it is not working on);
2. decode it and explain its rows (SHAP in this process, additivity checked);
3. write it in **one store transaction** (:func:`monitor.store.tasks.add_explanation_task`):
   the task's row, its explanations and its |SHAP| sums per window; a task whose
   row is already there (redelivered) writes nothing;
4. **commit** the task's offset, only now.

A worker killed at any point has committed only tasks whose rows are written; the
task it held is redelivered to another worker after the group's session timeout and
explained again, and step 3 keeps it from being stored twice. A store that cannot
take the rows leaves the offset uncommitted: the task is retried (with backoff) and
never lost. A task that cannot succeed (not a task, an unknown or unloadable model,
an additivity failure) is counted in ``driftd_explain_dropped_total{reason}``
(``bad_task``, ``model_unavailable``, ``additivity``, ``worker_error``), logged, and
committed, so that it does not block its partition.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from explainers import worker
from explainers.errors import AdditivityError, ExplainError
from explainers.models import worker_spec
from explainers.task_codec import DecodedTask, TaskFormatError, decode_task
from monitor.config import Settings
from monitor.metrics import PipelineMetrics, observe_many

__all__ = ["TaskOutcome", "TaskWorker"]

log = logging.getLogger(__name__)

_RETRY_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What became of one task message: ``stored`` rows, ``duplicate``, or a drop reason."""

    outcome: str
    rows: int
    task_id: str | None = None


class TaskWorker:
    """One explain-worker: loads the models, consumes tasks, writes, commits.

    Parameters
    ----------
    settings
        The same configuration as the daemon's (models, ``store.url``, ``kafka``).
    store
        A :class:`~monitor.store.Store` of ``store.url``.
    metrics
        Counters of this worker (``driftd_explanations_total``, drops, latency).
    threads
        Native threads (OpenMP, BLAS) SHAP may use in this process: one core by default.
    """

    def __init__(self, settings: Settings, store: Any, metrics: PipelineMetrics, threads: int = 1) -> None:
        self.settings = settings
        self.kafka = settings.kafka
        self.store = store
        self.metrics = metrics
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"[:128]
        self.threads = threads
        self.load_errors: dict[str, str] = {}
        self.tasks_done = 0
        self._consumer: Any = None
        self.stop_event = threading.Event()

    def load(self) -> list[str]:
        """Load every configured model's explainer; returns the models that can be explained."""
        specs = []
        for model in self.settings.models:
            if model.model_file is None:
                continue
            try:
                specs.append(worker_spec(model.name, model, None))
            except ExplainError as exc:
                self.load_errors[model.name] = str(exc)
        self.load_errors.update(worker.load_explainers(specs, self.threads))
        for name, error in self.load_errors.items():
            log.error("explain-worker cannot explain model %s: %s", name, error)
        return [s.name for s in specs if s.name not in self.load_errors]

    # -- one task --------------------------------------------------------------------

    def handle(self, value: bytes | None) -> TaskOutcome:
        """Explain and store one task message (steps 2 and 3 of the module docstring).

        Raises
        ------
        StoreError
            When the store cannot take the task: the caller must not commit it.
        """
        from monitor.store.tasks import add_explanation_task

        try:
            task = decode_task(value)
        except TaskFormatError as exc:
            log.warning("explanation task skipped: %s", exc)
            self.metrics.explain_dropped.labels(model="", reason="bad_task").inc()
            return TaskOutcome("bad_task", 0)
        try:
            result = worker.explain(task.model, task.chunks, write=False)
        except AdditivityError as exc:
            return self._dropped(task, "additivity", exc)
        except ExplainError as exc:
            return self._dropped(task, "model_unavailable", exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not stop the worker
            log.exception("explaining task %s failed", task.task_id)
            return self._dropped(task, "worker_error", exc)
        sums = [((task.model, w.version, w.segment, w.window_start), result.feature_names, w.abs_shap, w.count)
                for w in result.windows]
        written = add_explanation_task(self.store, task.task_id, task.model, self.worker_id, task.created_at,
                                       result.explanations or [], sums)
        if written == 0 and task.rows:
            log.debug("task %s: already stored (redelivered)", task.task_id)
            return TaskOutcome("duplicate", 0, task.task_id)
        self.metrics.explanations.labels(model=task.model).inc(written)
        event_times = np.concatenate([batch.event_times for batch, _, _ in task.chunks]) if task.chunks else np.empty(0)
        observe_many(self.metrics.explain_latency, np.maximum(0.0, time.time() - event_times))
        return TaskOutcome("stored", written, task.task_id)

    def _dropped(self, task: DecodedTask, reason: str, error: Exception) -> TaskOutcome:
        if reason != "worker_error":
            log.warning("task %s (%d rows of model %s) dropped: %s", task.task_id, task.rows, task.model, error)
        self.metrics.explain_dropped.labels(model=task.model, reason=reason).inc(task.rows)
        return TaskOutcome(reason, task.rows, task.task_id)

    # -- the loop ----------------------------------------------------------------------

    def _connect(self) -> Any:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        class _Logged(ConsumerRebalanceListener):
            # Runs on the client's IO thread: only logs.
            def on_partitions_revoked(self, revoked: Any) -> None:
                log.info("partitions revoked: %s", ",".join(str(p.partition) for p in sorted(revoked)))

            def on_partitions_assigned(self, assigned: Any) -> None:
                log.info("partitions assigned: %s", ",".join(str(p.partition) for p in sorted(assigned)))

        kafka = self.kafka
        consumer = KafkaConsumer(
            **kafka.client_options(),
            group_id=kafka.explain_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1,
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            max_poll_interval_ms=kafka.max_poll_interval_ms,
        )
        consumer.subscribe([kafka.explain_topic], listener=_Logged())
        return consumer

    def run(self, max_tasks: int | None = None) -> int:
        """Consume until :meth:`stop` (or ``max_tasks`` tasks); returns the exit code."""
        from kafka import OffsetAndMetadata

        delay = 0.2
        while self._consumer is None and not self.stop_event.is_set():
            try:
                self._consumer = self._connect()
            except Exception as exc:  # noqa: BLE001 - the broker may come later
                log.warning("explain-worker cannot reach Kafka (retrying in %.1f s): %s", delay, exc)
                self.stop_event.wait(delay)
                delay = min(_RETRY_MAX_S, delay * 2)
        consumer = self._consumer
        if consumer is None:
            return 0
        log.info("explain-worker %s consuming %s as group %s", self.worker_id, self.kafka.explain_topic,
                 self.kafka.explain_group_id)
        retry = 0.2
        try:
            while not self.stop_event.is_set() and (max_tasks is None or self.tasks_done < max_tasks):
                polled = consumer.poll(timeout_ms=self.kafka.poll_timeout_ms, max_records=1)
                for partition, messages in polled.items():
                    for message in messages:
                        log.debug("task at %s:%d started", partition.partition, message.offset)
                        try:
                            outcome = self.handle(message.value)
                        except Exception as exc:  # noqa: BLE001 - StoreError: retried, not committed
                            self.metrics.store_errors.labels(operation="add_explanation_task").inc()
                            log.warning("cannot store the task at %s:%d (retrying in %.1f s): %s",
                                        partition.partition, message.offset, retry, exc)
                            consumer.seek(partition, message.offset)
                            self.stop_event.wait(retry)
                            retry = min(_RETRY_MAX_S, retry * 2)
                            break
                        retry = 0.2
                        log.debug("task %s at %s:%d %s (%d rows)", outcome.task_id, partition.partition,
                                  message.offset, outcome.outcome, outcome.rows)
                        if self._commit(consumer, partition, OffsetAndMetadata(message.offset + 1, "", -1)):
                            log.debug("task at %s:%d committed", partition.partition, message.offset)
                        self.tasks_done += 1
        finally:
            consumer.close(autocommit=False)
            self._consumer = None
        return 0

    @staticmethod
    def _commit(consumer: Any, partition: Any, offset: Any) -> bool:
        try:
            consumer.commit({partition: offset})
            return True
        except Exception as exc:  # noqa: BLE001 - CommitFailedError: the partition moved on
            # The task is written; its new owner redoes it and finds it stored.
            log.warning("cannot commit %s:%d (the task will be redone, and found stored): %s",
                        partition.partition, offset.offset, exc)
            return False

    def stop(self) -> None:
        """Finish the task in hand, commit it, and leave the group."""
        self.stop_event.set()
