"""The Kafka loop: poll, hand batches to the pipeline, emit, checkpoint, commit.

Order of one iteration, and why:

1. ``poll`` a batch from the predictions and labels topics;
2. hand the values to the pure pipeline (windows, joins); collect rejects;
3. publish rejects to the dead-letter topic and **flush** the producer, so no bad
   message is lost if we crash after committing;
4. close due windows (reports go to the metrics exporter and the store writer);
5. every ``checkpoint.interval_seconds``: save open-window state, detector state and
   the next offsets in ONE store transaction, then commit exactly those offsets to
   Kafka. Offsets are committed only after the checkpoint holds, so a crash at any
   point replays from the last checkpoint onto the state saved with it: nothing is
   lost, nothing is counted twice.

On (re)assignment the loop seeks each partition to the checkpoint's offset. In
kafka-python 3 rebalance listeners run on the client's IO thread, where a blocking
call (commit, seek with a fetch) raises; the listener therefore only records the
change and the loop acts on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from monitor.config import Settings
from monitor.deadletter import DeadLetters
from monitor.decode import Rejected
from monitor.logs import invalid_event_log, log_partitions
from monitor.metrics import PipelineMetrics
from monitor.pacing import Pacer
from monitor.pipeline import Pipeline

__all__ = ["POSITION_BITS", "Consumer"]

log = logging.getLogger(__name__)

# A message's replay-stable position: partition << 40 | offset (offsets < 2**40).
POSITION_BITS = 40


def _listener_base() -> type:
    from kafka import ConsumerRebalanceListener

    return ConsumerRebalanceListener


class _Rebalance(_listener_base()):  # type: ignore[misc]
    """Rebalance listener that only records what happened (no blocking calls)."""

    def __init__(self) -> None:
        self.assigned: set[Any] = set()
        self.pending_seek: set[Any] = set()
        self.lock = threading.Lock()

    def on_partitions_revoked(self, revoked: Any) -> None:
        with self.lock:
            self.assigned -= set(revoked)
            self.pending_seek -= set(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        with self.lock:
            self.assigned |= set(assigned)
            self.pending_seek |= set(assigned)


class Consumer:
    """Consumes predictions and labels into a :class:`Pipeline`.

    Parameters
    ----------
    checkpoint_store
        Object with ``save_checkpoint(name, offsets, state_bytes)`` and
        ``load_checkpoint(name) -> (offsets, state_bytes) | None`` (the store), or
        None to rely on Kafka commits alone (state is then lost on restart).
    flush_outputs
        Called before a checkpoint so that reports queued for the store are written
        first (returns False when they could not be).
    """

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        metrics: PipelineMetrics,
        checkpoint_store: Any = None,
        flush_outputs: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.kafka = settings.kafka
        self.pipeline = pipeline
        self.metrics = metrics
        self.checkpoint_store = checkpoint_store
        self.flush_outputs = flush_outputs
        self.stop_event = threading.Event()
        self.rebalance = _Rebalance()
        self.checkpoint_name = f"{self.kafka.group_id}:{self.kafka.predictions_topic}"
        self._consumer: Any = None
        self._producer: Any = None
        self._checkpoint_offsets: dict[str, int] = {}
        self._positions: dict[Any, int] = {}
        # Kafka timestamp of the last record read per "topic:partition" (checkpointed): tells a
        # record still there from one of a recreated topic at the same offset.
        self._last_timestamps: dict[str, int] = {}
        self._last_checkpoint = time.monotonic()
        self._pacer: Pacer | None = None
        self.last_loop = time.time()
        self.connected = False
        self.restored = False
        # Set when the saved checkpoint cannot be read: the daemon stays not ready and
        # consumes nothing, unless ``reset_state`` (``driftd run --reset-state``).
        self.state_error: str | None = None
        self.reset_state = False
        self.invalid_log = invalid_event_log()

    # -- lifecycle -------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.connected and bool(self.rebalance.assigned) and self.state_error is None

    def _connect(self) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        options = self.kafka.client_options()
        self._consumer = KafkaConsumer(
            group_id=self.kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.kafka.auto_offset_reset,
            max_poll_records=self.kafka.max_poll_records,
            max_poll_interval_ms=self.kafka.max_poll_interval_ms,
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
            # Bounded, so that start-up and shutdown do not hang for kafka-python's 30 s default
            # when the broker is unreachable or its certificate is refused.
            bootstrap_timeout_ms=min(self.kafka.request_timeout_ms, 5000),
            fetch_max_bytes=max(52_428_800, self.settings.limits.max_message_bytes * 2),
            max_partition_fetch_bytes=max(1_048_576, self.settings.limits.max_message_bytes + 1024),
            **options,
        )
        topics = [self.kafka.predictions_topic]
        if self.settings.labels.enabled:
            topics.append(self.kafka.labels_topic)
        self._consumer.subscribe(topics, listener=self.rebalance)
        self._pacer = Pacer(self._consumer, self.kafka.predictions_topic, self.pipeline, self.metrics,
                            lambda: set(self.rebalance.assigned), self._positions)
        self._producer = KafkaProducer(linger_ms=20, acks="all", retries=5, max_block_ms=min(self.kafka.request_timeout_ms, 5000), **options)
        self._dead_letters = DeadLetters(self._producer, self.kafka.dead_letter_topic, self.metrics)
        self.connected = True

    def _disconnect(self) -> None:
        for client in (self._consumer, self._producer):
            if client is None:
                continue
            try:
                client.close(timeout=5) if client is self._producer else client.close(autocommit=False)
            except Exception:
                log.debug("error closing Kafka client", exc_info=True)
        self._consumer = self._producer = None
        self._pacer = None
        self.connected = False
        with self.rebalance.lock:
            self.rebalance.assigned.clear()
            self.rebalance.pending_seek.clear()
        self.metrics.assigned_partitions.set(0)

    def restore(self) -> None:
        """Load the last checkpoint into the pipeline (once, before consuming)."""
        if self.restored or self.checkpoint_store is None:
            self.restored = True
            return
        saved = self.checkpoint_store.load_checkpoint(self.checkpoint_name)  # store down: raises, retried
        if saved is not None:
            offsets, state = saved
            try:
                loaded = orjson.loads(state)
                self.pipeline.restore(loaded)
                self._last_timestamps = dict(loaded.get("consumer", {}).get("last_timestamp", {}))
            except Exception as exc:  # noqa: BLE001 - any unreadable state is reported the same way
                self.pipeline.reset()
                problem = f"checkpoint {self.checkpoint_name} cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
                self.metrics.checkpoint_restore_failures.inc()
                if not self.reset_state:
                    self.state_error = problem
                    log.error("%s; not consuming and not ready. Fix or remove it, or start with "
                              "`driftd run --reset-state` to begin from empty state", problem)
                    self.restored = True
                    return
                log.warning("%s; --reset-state: starting from empty window and label state at the "
                            "checkpoint's offsets", problem)
            self._checkpoint_offsets = dict(offsets)
            log.info("restored checkpoint %s at offsets %s", self.checkpoint_name, offsets)
        self.restored = True

    def run(self) -> None:
        """Consume until :meth:`stop`; reconnects with backoff when the broker is down."""
        backoff = 0.5
        while not self.stop_event.is_set():
            try:
                if not self.restored:
                    self.restore()
                if self.state_error is not None:
                    self.last_loop = time.time()  # alive, deliberately idle
                    self.stop_event.wait(1.0)
                    continue
                if self._consumer is None:
                    self._connect()
                self._iteration()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - outages must not kill the daemon
                hint = ""
                if "SSL" in self.kafka.security_protocol and "bootstrap" in str(exc).lower():
                    # kafka-python reports a refused certificate as a bootstrap timeout.
                    hint = (" - with security_protocol " + self.kafka.security_protocol
                            + ": is the broker's certificate signed by kafka.ssl_cafile, and its host name right?")
                log.warning("consumer error (%s)%s; reconnecting in %.1f s", exc, hint, backoff)
                self._disconnect()
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, self.kafka.reconnect_backoff_max_ms / 1000)
        self._shutdown()

    def stop(self) -> None:
        self.stop_event.set()

    def _shutdown(self) -> None:
        try:
            if self.settings.windows.close_on_shutdown:
                self.pipeline.close_all()
            if self._consumer is not None:
                self.checkpoint(force=True)
        except Exception:
            log.exception("final checkpoint failed; the next start replays from the previous one")
        self.invalid_log.flush()
        self._disconnect()

    # -- one iteration -----------------------------------------------------------
    def _seek_assigned(self) -> set[Any]:
        """Seek newly assigned partitions to their checkpoint offsets; returns those sought."""
        with self.rebalance.lock:
            pending = set(self.rebalance.pending_seek)
            self.rebalance.pending_seek.clear()
            assigned = len(self.rebalance.assigned)
        self.metrics.assigned_partitions.set(assigned)
        log_partitions(pending, assigned)
        wanted = {tp: offset for tp in pending if (offset := self._checkpoint_offsets.get(f"{tp.topic}:{tp.partition}")) is not None}
        if not wanted:
            return set()
        ends = self._consumer.end_offsets(list(wanted))
        for tp, offset in wanted.items():
            end = ends.get(tp)
            if end is not None and end < offset and not self._still_there(tp, offset - 1):
                # The log is shorter than what we already processed and the last record we
                # read is gone: the topic was deleted and recreated (or an in-memory broker
                # restarted). Start it from the beginning.
                log.warning("%s:%d ends at %d, before the checkpoint offset %d, and offset %d is gone: "
                            "topic recreated; reading it from the start", tp.topic, tp.partition, end, offset, offset - 1)
                self.metrics.offset_resets.inc()
                offset = 0
                self._checkpoint_offsets[f"{tp.topic}:{tp.partition}"] = 0
                self._positions.pop(tp, None)
            elif end is not None and end < offset:
                # Seen on the embedded broker (Tansu) under load: its end offset trails records
                # it has served. The last record we read is still there, so nothing was recreated.
                log.info("%s:%d reports its end at %d, before the checkpoint offset %d, but offset %d is still "
                         "there: continuing from the checkpoint", tp.topic, tp.partition, end, offset, offset - 1)
            self._consumer.seek(tp, offset)
        return set(wanted)

    def _still_there(self, tp: Any, offset: int) -> bool:
        """Whether the broker still holds the record at ``offset`` that we read last: the
        same offset with the same timestamp (a recreated topic refilled since has records
        at that offset too, written later). A group-less probe."""
        from kafka import KafkaConsumer

        probe = None
        try:
            probe = KafkaConsumer(enable_auto_commit=False, group_id=None, consumer_timeout_ms=3000,
                                  bootstrap_timeout_ms=min(self.kafka.request_timeout_ms, 5000),
                                  **self.kafka.client_options())
            probe.assign([tp])
            probe.seek(tp, offset)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                saved = self._last_timestamps.get(f"{tp.topic}:{tp.partition}")
                for records in probe.poll(timeout_ms=500, max_records=1).values():
                    return any(r.offset == offset and (saved is None or r.timestamp == saved) for r in records)
            return False
        except Exception:  # noqa: BLE001 - cannot tell: take the broker's end offset at its word
            log.debug("record probe of %s:%d at %d failed", tp.topic, tp.partition, offset, exc_info=True)
            return False
        finally:
            if probe is not None:
                probe.close()

    def _iteration(self) -> None:
        started = time.perf_counter()
        records = self._consumer.poll(timeout_ms=self.kafka.poll_timeout_ms, update_offsets=True)
        # Records fetched in the poll that (re)assigned a partition start at the committed
        # offset, which can trail the checkpoint if a commit failed: drop them, the seek
        # to the checkpoint offset replays exactly what the saved state has not seen.
        for tp in self._seek_assigned():
            records.pop(tp, None)
        clocks = self.pipeline.clocks
        predictions = {tp.partition for tp in self.rebalance.assigned if tp.topic == self.kafka.predictions_topic}
        if predictions != clocks.assigned:
            clocks.assign(predictions)
        self.last_loop = time.time()
        self.metrics.last_poll.set(self.last_loop)
        rejected_total = 0
        # One call per topic for the whole poll (not one per partition): the pipeline's
        # per-call work is amortised over every partition's records, and positions carry
        # the partition. Predictions first, so that labels of the same poll can join.
        for topic in (self.kafka.predictions_topic, self.kafka.labels_topic):
            polled = [(tp, m) for tp, messages in records.items() if tp.topic == topic for m in messages]
            if not polled:
                continue
            values = [m.value for _, m in polled]
            if topic == self.kafka.predictions_topic:
                for partition in {tp.partition for tp, _ in polled}:
                    clocks.delivered(partition)
                positions = [(tp.partition << POSITION_BITS) | m.offset for tp, m in polled]
                rejected = self.pipeline.process_predictions(values, positions)
            else:
                rejected = self.pipeline.process_labels(values)
            rejected_total += len(rejected)
            for item in rejected:
                tp, message = polled[item.index]
                self._dead_letter(tp, message, item)
        for tp, messages in records.items():
            if messages:
                self._positions[tp] = messages[-1].offset + 1
                self._last_timestamps[f"{tp.topic}:{tp.partition}"] = messages[-1].timestamp
        for value, reason, detail in self.pipeline.drain_dead_labels():
            self._dead_letter_value(value, reason, detail, source="expired-label")
            rejected_total += 1
        if rejected_total:
            self._producer.flush(timeout=10)
        self.pipeline.close_due()
        self.pipeline.apply_attribution()
        if records:
            self.metrics.batch_duration.observe(time.perf_counter() - started)
        self.checkpoint()
        if self._pacer is not None:
            self._pacer.refresh_ends()
            self._pacer.read_in_step()

    def _dead_letter(self, tp: Any, message: Any, item: Rejected) -> None:
        self._dead_letter_value(message.value, item.reason, item.detail, f"{tp.topic}:{tp.partition}:{message.offset}", message.key,
                                where={"topic": tp.topic, "partition": tp.partition, "offset": message.offset})

    def _dead_letter_value(self, value: bytes | None, reason: str, detail: str, source: str, key: bytes | None = None,
                           where: dict[str, Any] | None = None) -> None:
        self.invalid_log.log(reason, "invalid event dead-lettered (%s) from %s: %s", reason, source, detail[:300], event="invalid_event", reason=reason)
        # Truncation of oversized values and send-failure counting: monitor.deadletter.
        self._dead_letters.publish(value, reason, detail, source=source, key=key, **(where or {}))

    def checkpoint(self, force: bool = False) -> bool:
        """Save state + offsets in one store transaction, then commit those offsets."""
        now = time.monotonic()
        if not force and now - self._last_checkpoint < self.settings.checkpoint.interval_seconds:
            return False
        self._last_checkpoint = now
        if not self._positions:
            return False
        offsets = {f"{tp.topic}:{tp.partition}": offset for tp, offset in self._positions.items()}
        if self.checkpoint_store is not None:
            if self.flush_outputs is not None and not self.flush_outputs():
                log.warning("store not reachable; checkpoint postponed, offsets not committed")
                return False
            saved = {**self.pipeline.to_state(), "consumer": {"last_timestamp": self._last_timestamps}}
            state = orjson.dumps(saved, option=orjson.OPT_SERIALIZE_NUMPY)
            try:
                self.checkpoint_store.save_checkpoint(self.checkpoint_name, {**self._checkpoint_offsets, **offsets}, state)
            except Exception as exc:  # noqa: BLE001 - store outage: keep consuming, retry later
                self.metrics.store_errors.labels(operation="checkpoint").inc()
                log.warning("checkpoint failed (%s); offsets not committed", exc)
                return False
            self._checkpoint_offsets.update(offsets)
            self.metrics.checkpoints.inc()
            self.metrics.last_checkpoint.set(time.time())
        from kafka import OffsetAndMetadata

        commit = {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in self._positions.items() if tp in self.rebalance.assigned}
        if commit:
            self._consumer.commit(commit)
        return True

