"""Dead letters that land: every rejected message reaches the dead-letter topic.

A dead letter carries the reason and where the message came from in headers, so
an operator can find the original (``driftd-source-topic``, ``-partition``,
``-offset``) and replay it after a fix. A value too large to publish (the message
was rejected as ``too_large`` precisely because it is large, and the producer
refuses requests over ``max_request_size``) is cut to its first
:data:`PREVIEW_BYTES`; ``driftd-truncated``, ``driftd-original-bytes`` and
``driftd-value-sha256`` say so and identify the full value, which is still in its
source topic.

Sends are asynchronous: a failure is reported by the send's future, not by
``send()``, so each future gets an errback that counts it
(``driftd_dead_letter_errors_total``, alert ``DriftdDeadLetterFailures``). The
consumer flushes the producer before it commits offsets (see
:mod:`monitor.consumer`); a dead letter that failed leaves its message in the
source topic, counted.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any

__all__ = ["PREVIEW_BYTES", "SAFE_VALUE_BYTES", "DeadLetters", "dead_letter_headers"]

log = logging.getLogger(__name__)

# kafka-python's default max_request_size is 1 MiB; headers and record framing need
# room, so values above this are truncated rather than refused by the producer.
SAFE_VALUE_BYTES = 1_048_576 - 64 * 1024
# What is kept of a value that is too large: enough to see what it was.
PREVIEW_BYTES = 64 * 1024
MAX_DETAIL_BYTES = 1000
_WARN_INTERVAL_S = 10.0


def dead_letter_headers(
    reason: str,
    detail: str,
    value: bytes | None,
    *,
    source: str,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
    truncated: bool = False,
) -> list[tuple[str, bytes]]:
    """The headers of one dead letter (``value`` is the original, untruncated value).

    >>> dict(dead_letter_headers("schema", "no model", b"{}", source="p:0:5", topic="p", partition=0, offset=5))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'driftd-reason': b'schema', 'driftd-detail': b'no model', 'driftd-source': b'p:0:5',
     'driftd-original-bytes': b'2', 'driftd-source-topic': b'p', 'driftd-source-partition': b'0',
     'driftd-source-offset': b'5'}
    """
    headers = [
        ("driftd-reason", reason.encode()),
        ("driftd-detail", detail.encode("utf-8", "replace")[:MAX_DETAIL_BYTES]),
        ("driftd-source", source.encode("utf-8", "replace")),
        ("driftd-original-bytes", str(len(value or b"")).encode()),
    ]
    if topic is not None:
        headers.append(("driftd-source-topic", topic.encode("utf-8", "replace")))
    if partition is not None:
        headers.append(("driftd-source-partition", str(partition).encode()))
    if offset is not None:
        headers.append(("driftd-source-offset", str(offset).encode()))
    if truncated:
        headers.append(("driftd-truncated", b"true"))
        headers.append(("driftd-value-sha256", hashlib.sha256(value or b"").hexdigest().encode()))
    return headers


class DeadLetters:
    """Publishes rejected messages to ``topic`` through ``producer``.

    Parameters
    ----------
    producer
        A ``kafka.KafkaProducer`` (anything with ``send(...) -> future``).
    topic
        The dead-letter topic (``kafka.dead_letter_topic``).
    metrics
        A :class:`monitor.metrics.PipelineMetrics`: failures count in
        ``dead_letter_errors``, truncated values in ``dead_letter_truncated``.
    max_value_bytes
        Values larger than this are cut to :data:`PREVIEW_BYTES`.
    """

    def __init__(
        self, producer: Any, topic: str, metrics: Any, *, max_value_bytes: int = SAFE_VALUE_BYTES
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.metrics = metrics
        self.max_value_bytes = max_value_bytes
        self._lock = threading.Lock()
        self._last_warning = 0.0
        self.sent = 0
        self.failed = 0

    def publish(
        self,
        value: bytes | None,
        reason: str,
        detail: str,
        *,
        source: str,
        key: bytes | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> bool:
        """Send one dead letter; False when it could not even be handed to the producer.

        A later failure (broker refused it, timed out) is counted by the future's
        errback; :meth:`~kafka.KafkaProducer.flush` waits for every outcome.
        """
        truncated = value is not None and len(value) > self.max_value_bytes
        headers = dead_letter_headers(
            reason,
            detail,
            value,
            source=source,
            topic=topic,
            partition=partition,
            offset=offset,
            truncated=truncated,
        )
        if truncated:
            self.metrics.dead_letter_truncated.inc()
            value = value[:PREVIEW_BYTES]
        try:
            future = self.producer.send(self.topic, value=value, key=key, headers=headers)
        except Exception as exc:  # noqa: BLE001 - counted; the message is still in its source topic
            self._failed(exc, source)
            return False
        future.add_callback(self._delivered)
        future.add_errback(self._failed, source)
        return True

    def _delivered(self, _metadata: Any) -> None:
        with self._lock:
            self.sent += 1

    def _failed(self, error: BaseException, source: str) -> None:
        # Runs on the producer's I/O thread for asynchronous failures.
        self.metrics.dead_letter_errors.inc()
        with self._lock:
            self.failed += 1
            now = time.monotonic()
            warn = now - self._last_warning >= _WARN_INTERVAL_S
            if warn:
                self._last_warning = now
        if warn:
            log.warning(
                "could not dead-letter a message from %s to %s: %s (%d failures so far; "
                "the message stays in its source topic)",
                source,
                self.topic,
                error,
                self.failed,
            )
