"""The daemon's side of ``explain.mode: kafka``: publish explanation tasks, never wait.

:class:`TaskPublisher` is the executor of the :class:`~explainers.admission.Admission`
queue when explanations run in ``driftd explain-worker`` processes. Its thread takes
tasks as the pool's dispatcher would (full tasks, or rows that lingered), encodes
them (:mod:`explainers.task_codec`) and hands them to a Kafka producer (``acks=all``),
keyed by task id and sent to the topic's partitions in turn, so that every worker of
the group gets an equal share. A task leaves
the queue depth when the broker acknowledged it; at most ``max_in_flight`` tasks are
unacknowledged at once. So the bounded buffer in front of the broker is the same
``explain.queue_size`` as in pool mode: while the broker is slow or down, the queue
fills and further rows are dropped and counted (``queue_full``); a task the broker
refuses is counted as ``publish_error``. Ingest never waits for any of it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from explainers.admission import Admission, Task
from explainers.task_codec import encode_task
from monitor.config import KafkaSettings
from monitor.metrics import PipelineMetrics

__all__ = ["TaskPublisher"]

log = logging.getLogger(__name__)

_RECONNECT_MAX_S = 10.0


class TaskPublisher:
    """Publishes the admitted tasks to ``kafka.explain_topic``.

    Parameters
    ----------
    admission
        Where tasks come from.
    kafka
        Connection settings and ``explain_topic``.
    metrics
        ``driftd_explain_published_total`` and the drops.
    max_in_flight
        Tasks sent and not yet acknowledged by the broker, at most.
    """

    def __init__(
        self, admission: Admission, kafka: KafkaSettings, metrics: PipelineMetrics, max_in_flight: int = 16,
    ) -> None:
        self.admission = admission
        self.kafka = kafka
        self.topic = kafka.explain_topic
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self._producer: Any = None
        self._partitions: list[int] = []
        self._partitions_at = 0.0
        self._next = 0
        self._sent: dict[int, Task] = {}  # id(task) -> task, sent and not yet answered
        self._sent_lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driftd-explain-publish", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the producer is connected; False on timeout."""
        return self._ready.wait(timeout)

    def _connect(self) -> Any:
        """A producer, retried with backoff until connected or closing (None then)."""
        from kafka import KafkaProducer

        delay = 0.1
        while not self.admission.closing:
            try:
                return KafkaProducer(
                    **self.kafka.client_options(), acks="all", linger_ms=5,
                    # send() blocks this thread (never ingest) at most this long when
                    # the broker is away; the task is then counted as publish_error.
                    max_block_ms=5_000,
                )
            except Exception as exc:  # noqa: BLE001 - the broker may come later
                log.warning("explanation task producer cannot connect (retrying in %.1f s): %s", delay, exc)
                time.sleep(delay)
                delay = min(_RECONNECT_MAX_S, delay * 2)
        return None

    def _run(self) -> None:
        self._producer = self._connect()
        if self._producer is None:
            return  # closed before the broker was reached: close() counts the queue
        self._ready.set()
        while True:
            task = self.admission.wait_task(self.max_in_flight)
            if task is None:
                return
            self._publish(task)

    def _publish(self, task: Task) -> None:
        task_id = uuid.uuid4().hex
        try:
            if self._producer is None:
                raise RuntimeError("no producer")
            value = encode_task(task_id, task.model, time.time_ns() // 1000, [c.as_tuple() for c in task.chunks])
            with self._sent_lock:
                self._sent[id(task)] = task
            future = self._producer.send(self.topic, value=value, key=task_id.encode(), partition=self._partition())
        except Exception as exc:  # noqa: BLE001 - counted, logged, never fatal
            with self._sent_lock:
                self._sent.pop(id(task), None)
            self._count_failed(task, exc)
            return
        future.add_callback(lambda _meta, t=task: self._acknowledged(t))
        future.add_errback(lambda exc, t=task: self._failed(t, exc))

    def _partition(self) -> int | None:
        """The next partition, round-robin: tasks spread evenly over the workers (a
        random key leaves some partitions with many more tasks than others)."""
        if time.monotonic() - self._partitions_at > 60.0 or not self._partitions:
            self._partitions = sorted(self._producer.partitions_for(self.topic) or [])
            self._partitions_at = time.monotonic()
        if not self._partitions:
            return None  # unknown yet: the producer's partitioner picks
        self._next = (self._next + 1) % len(self._partitions)
        return self._partitions[self._next]

    def _answered(self, task: Task) -> bool:
        """Whether this is the first answer about ``task`` (stop() may have counted it)."""
        with self._sent_lock:
            return self._sent.pop(id(task), None) is not None

    def _acknowledged(self, task: Task) -> None:
        if not self._answered(task):
            return
        self.metrics.explain_published.labels(model=task.model).inc(task.rows)
        self.admission.finish(task)

    def _failed(self, task: Task, error: BaseException) -> None:
        if self._answered(task):
            self._count_failed(task, error)

    def _count_failed(self, task: Task, error: BaseException) -> None:
        log.warning("cannot publish an explanation task of %d rows of model %s: %s", task.rows, task.model, error)
        self.admission.drop(task.model, "publish_error", task.rows)
        self.admission.finish(task)

    def join(self, timeout: float) -> None:
        """Wait for the thread (it ends once closing and the queue is drained)."""
        if self._thread.is_alive():
            self._thread.join(max(0.0, timeout))

    def stop(self, deadline: float) -> None:
        """Wait for the broker's acknowledgements until ``deadline``, then close the producer.

        Tasks still unacknowledged then are counted as ``shutdown``.
        """
        producer = self._producer
        if producer is None:
            return
        try:
            producer.flush(timeout=max(0.1, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - kafka.errors.KafkaTimeoutError
            log.warning("explanation tasks not acknowledged at shutdown: %s", exc)
        with self._sent_lock:
            left, self._sent = list(self._sent.values()), {}
        for task in left:
            self.admission.drop(task.model, "shutdown", task.rows)
            self.admission.finish(task)
        if left:
            log.warning("%d explanation tasks were not acknowledged by the broker at shutdown", len(left))
        producer.close(timeout=1)
