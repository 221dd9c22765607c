"""The in-process prediction logger: validate, encode, buffer, return.

:meth:`PredictionLogger.log_prediction` checks the event against the contract
(:func:`monitor.events.check_prediction`, the same check the daemon runs), encodes it
with orjson and offers it to a bounded :class:`~monitor.sidecar.outbox.Outbox`. It
never waits for Kafka: when the buffer is full the event is dropped and counted, and
the call returns ``False``.

>>> from monitor.sidecar import PredictionLogger
>>> logger = PredictionLogger(bootstrap_servers="127.0.0.1:1", connect_timeout_ms=100)
>>> logger.log_prediction(model="churn", model_version="3", prediction_id="r-1",
...                       features={"tenure": 12, "plan": "pro"}, prediction=0.83)
True
>>> logger.log_prediction(model="", model_version="3", prediction_id="r-2",
...                       features={}, prediction=1)
Traceback (most recent call last):
...
monitor.sidecar.errors.InvalidEvent: invalid prediction event (schema): 'model' is required and must be a non-empty string
>>> logger.close(timeout=0.1)  # no broker at 127.0.0.1:1: the event is not delivered
False
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import orjson
from pydantic import ValidationError

from monitor.config import ConfigError, KafkaSettings, load_settings
from monitor.events import (
    TOO_LARGE,
    Invalid,
    check_label,
    check_not_future,
    check_prediction,
    parse_timestamp,
)
from monitor.sidecar.errors import InvalidEvent, KafkaUnreachable, LoggerClosed
from monitor.sidecar.outbox import DeliveryStats, Outbox, Record

__all__ = ["COMPRESSION_TYPES", "PredictionLogger"]

Scalar = int | float | str | bool | None

COMPRESSION_TYPES = ("gzip", "lz4", "zstd", "snappy", None)


def _available_compression() -> list[str | None]:
    from kafka import codec

    checks = {"gzip": codec.has_gzip, "lz4": codec.has_lz4, "zstd": codec.has_zstd, "snappy": codec.has_snappy}
    return [name for name, has in checks.items() if has()] + [None]


class PredictionLogger:
    """Log predictions and labels to Kafka from inside a serving process.

    Parameters
    ----------
    kafka
        Connection, security and topic settings (``KafkaSettings`` from
        ``driftd.yaml``); defaults when None.
    buffer_events, buffer_bytes
        Bounds of the buffer: events, and bytes of encoded events, accepted but not
        yet acknowledged by Kafka. Memory stays within ``buffer_bytes`` plus overhead.
    batch_events
        Most events handed to the producer at once.
    compression
        Kafka compression codec: ``lz4`` (a dependency: cheapest per event), ``gzip``
        (stdlib, but kafka-python compresses at level 9: ~40 µs per event), ``zstd`` or
        ``snappy`` when their library is installed, or None.
    linger_ms
        How long the producer waits to fill a batch.
    max_event_bytes
        Largest encoded event accepted (the daemon's ``limits.max_message_bytes``).
    max_future_seconds
        Event times further ahead of this machine's clock are refused as
        ``bad_timestamp`` (the daemon's ``limits.max_future_seconds``, which refuses them too).
    connect_timeout_ms
        How long one connection attempt may take before it is retried in the background.
    delivery_timeout_ms
        How long the producer retries a batch before the logger re-queues it; at least
        ``linger_ms + request_timeout_ms``.
    close_timeout
        Seconds ``with``-block exit waits for buffered events to be delivered.
    stall_timeout_s
        A batch unacknowledged for longer than this makes :attr:`ready` false.
    **kafka_overrides
        Any ``KafkaSettings`` field, e.g. ``bootstrap_servers="kafka:9092"``,
        ``security_protocol="SSL"``, ``ssl_cafile="/etc/ca.pem"``.

    Notes
    -----
    Delivery is at least once and happens in a background thread; Kafka being down
    at start or later never raises here. Watch :attr:`ready` and :meth:`stats`.
    """

    def __init__(
        self,
        kafka: KafkaSettings | None = None,
        *,
        buffer_events: int = 100_000,
        buffer_bytes: int = 256 * 1024 * 1024,
        batch_events: int = 2000,
        compression: str | None = "lz4",
        linger_ms: int = 5,
        max_event_bytes: int = 1_048_576,
        max_future_seconds: float = 3600.0,
        connect_timeout_ms: int = 2000,
        delivery_timeout_ms: int | None = None,
        close_timeout: float = 10.0,
        stall_timeout_s: float = 5.0,
        **kafka_overrides: Any,
    ) -> None:
        self.kafka = _merge(kafka or KafkaSettings(), kafka_overrides)
        if compression not in COMPRESSION_TYPES:
            raise ConfigError(f"compression: unknown codec {compression!r}; allowed: {COMPRESSION_TYPES}")
        if compression not in _available_compression():
            raise ConfigError(
                f"compression: {compression!r} needs its library (pip install {compression}); "
                f"available here: {_available_compression()}"
            )
        self.compression = compression
        self.linger_ms = linger_ms
        self.max_event_bytes = max_event_bytes
        self.max_future_seconds = max_future_seconds
        self.connect_timeout_ms = connect_timeout_ms
        minimum_delivery = linger_ms + self.kafka.request_timeout_ms
        self.delivery_timeout_ms = max(delivery_timeout_ms or 0, minimum_delivery)
        self.close_timeout = close_timeout
        self._closed = False
        self.outbox = Outbox(
            self._create_producer,
            capacity=buffer_events,
            capacity_bytes=buffer_bytes,
            batch_events=batch_events,
            stall_s=stall_timeout_s,
            give_up_s=self.delivery_timeout_ms / 1000 + 5.0,
            retry_backoff_max_s=min(2.0, self.kafka.reconnect_backoff_max_ms / 1000),
        )

    @classmethod
    def from_config(cls, path: str | Path | None, **options: Any) -> PredictionLogger:
        """A logger for the ``kafka`` section of a ``driftd.yaml`` (and ``DRIFTD_*`` variables)."""
        settings = load_settings(path)
        options.setdefault("max_event_bytes", settings.limits.max_message_bytes)
        options.setdefault("max_future_seconds", settings.limits.max_future_seconds)
        return cls(settings.kafka, **options)

    # -- logging -----------------------------------------------------------------

    def log_prediction(
        self,
        *,
        model: str,
        model_version: str,
        prediction_id: str,
        features: Mapping[str, Scalar],
        prediction: float | str | bool,
        timestamp: float | str | datetime | None = None,
        scores: Mapping[str, float] | None = None,
        segment: Mapping[str, str] | None = None,
        variant: str | None = None,
        latency_ms: float | None = None,
    ) -> bool:
        """Log one prediction; True when buffered, False when dropped (buffer full).

        ``timestamp`` is the event time (epoch seconds, RFC 3339 string or an aware
        ``datetime``), now when None. Raises :class:`InvalidEvent` when the event
        breaks the contract and :class:`LoggerClosed` after :meth:`close`.
        """
        event: dict[str, Any] = {
            "model": model,
            "model_version": model_version,
            "prediction_id": prediction_id,
            "timestamp": time.time() if timestamp is None else _timestamp(timestamp),
            "features": features,
            "prediction": prediction,
        }
        if scores is not None:
            event["scores"] = scores
        if segment is not None:
            event["segment"] = segment
        if variant is not None:
            event["variant"] = variant
        if latency_ms is not None:
            event["latency_ms"] = latency_ms
        return self._offer(self.encode_prediction(event))

    def log_label(
        self,
        *,
        prediction_id: str,
        label: float | str | bool,
        timestamp: float | str | datetime | None = None,
        model: str | None = None,
    ) -> bool:
        """Log the true outcome of an earlier prediction; same contract as :meth:`log_prediction`."""
        event: dict[str, Any] = {
            "prediction_id": prediction_id,
            "label": label,
            "timestamp": time.time() if timestamp is None else _timestamp(timestamp),
        }
        if model is not None:
            event["model"] = model
        return self._offer(self.encode_label(event))

    def encode_prediction(self, event: dict[str, Any]) -> Record:
        """Validate a prediction event and encode it as a Kafka record (raises :class:`InvalidEvent`)."""
        return self._encode("prediction", event, check_prediction, self.kafka.predictions_topic)

    def encode_label(self, event: dict[str, Any]) -> Record:
        """Validate a label event and encode it as a Kafka record (raises :class:`InvalidEvent`)."""
        return self._encode("label", event, check_label, self.kafka.labels_topic)

    def _encode(
        self, kind: str, event: dict[str, Any], check: Callable[[dict[str, Any]], None], topic: str
    ) -> Record:
        try:
            try:
                check(event)
            except Invalid:
                # numpy scalars are the usual culprit; converting only on failure keeps
                # the common path free of a per-feature loop.
                event = _plain_event(event)
                check(event)
            timestamp = event["timestamp"]
            seconds = float(timestamp) if type(timestamp) in (int, float) else parse_timestamp(timestamp)
            check_not_future(seconds, time.time(), self.max_future_seconds)
            value = orjson.dumps(event)
        except Invalid as exc:
            self.outbox.count_rejected(exc.reason)
            raise InvalidEvent(kind, exc.reason, exc.detail) from None
        except (orjson.JSONEncodeError, TypeError) as exc:
            self.outbox.count_rejected("schema")
            raise InvalidEvent(kind, "schema", f"not JSON-serialisable: {exc}") from None
        if len(value) > self.max_event_bytes:
            self.outbox.count_rejected(TOO_LARGE)
            raise InvalidEvent(kind, TOO_LARGE, f"{len(value)} bytes > limit {self.max_event_bytes}")
        # Keyed by prediction id: predictions and their labels land on the same
        # partition number, so a consumer can join them without a shuffle.
        return (topic, event["prediction_id"].encode(), value)

    def _offer(self, record: Record) -> bool:
        if self._closed:
            raise LoggerClosed("this PredictionLogger is closed; create a new one")
        return self.outbox.offer(record)

    # -- state and lifecycle -----------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether Kafka is reachable and acknowledging events right now."""
        return self.outbox.ready

    def stats(self) -> DeliveryStats:
        """Counters: accepted, dropped, sent, errors, rejected, buffered, ready, last error."""
        return self.outbox.stats()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted event is acknowledged; False when ``timeout`` passed first."""
        return self.outbox.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Deliver what is buffered (up to ``timeout`` s, default ``close_timeout``) and stop.

        Returns False when events were still undelivered; they are counted in
        ``stats().buffered`` and lost.
        """
        if self._closed:
            return self.outbox.stats().buffered == 0
        self._closed = True
        return self.outbox.close(self.close_timeout if timeout is None else timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- Kafka ---------------------------------------------------------------------

    def producer_options(self) -> dict[str, Any]:
        """Options for ``kafka.KafkaProducer`` (connection and security from ``kafka``)."""
        options = self.kafka.client_options()
        options.update(
            compression_type=self.compression,
            linger_ms=self.linger_ms,
            batch_size=256 * 1024,
            max_request_size=max(1_048_576, self.max_event_bytes + 4096),
            # Not idempotent: the outbox re-sends failed chunks anyway (at least once),
            # and an idempotent producer wedges when a broker forgets its producer ids.
            enable_idempotence=False,
            acks="all",
            # Metadata waits block the delivery thread only, never the caller.
            max_block_ms=1000,
            bootstrap_timeout_ms=self.connect_timeout_ms,
            delivery_timeout_ms=self.delivery_timeout_ms,
        )
        return options

    def _create_producer(self) -> Any:
        from kafka import KafkaProducer

        try:
            producer = KafkaProducer(**self.producer_options())
        except Exception as exc:
            raise _diagnose(self.kafka, exc) from exc
        try:
            # Fetching metadata proves the broker answers (not just the bootstrap) and
            # leaves a connection open, which the idle health probe relies on.
            producer.partitions_for(self.kafka.predictions_topic)
        except Exception as exc:
            producer.close(timeout=0)
            raise KafkaUnreachable(f"Kafka at {self.kafka.bootstrap_servers} does not serve metadata: {exc}") from exc
        return producer


def _merge(kafka: KafkaSettings, overrides: dict[str, Any]) -> KafkaSettings:
    if not overrides:
        return kafka
    try:
        return KafkaSettings.model_validate({**kafka.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid Kafka option for PredictionLogger: {problems}") from None


def _timestamp(value: float | str | datetime) -> float | str:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    return item() if callable(item) and not isinstance(value, (str, bytes, dict)) else value


def _plain_event(event: dict[str, Any]) -> dict[str, Any]:
    plain = {key: _plain(value) for key, value in event.items()}
    for key in ("features", "scores"):
        if isinstance(plain.get(key), Mapping):
            plain[key] = {name: _plain(value) for name, value in plain[key].items()}
    return plain


def _diagnose(kafka: KafkaSettings, error: Exception) -> Exception:
    """Turn kafka-python's generic bootstrap failure into a clear TLS error where that is the cause."""
    if kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return KafkaUnreachable(f"cannot reach Kafka at {kafka.bootstrap_servers}: {error}")
    host, _, port = kafka.bootstrap_servers.split(",")[0].strip().rpartition(":")
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    context.check_hostname = kafka.ssl_check_hostname
    try:
        with socket.create_connection((host, int(port)), timeout=2.0) as sock, \
                context.wrap_socket(sock, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as exc:
        return KafkaUnreachable(
            f"TLS certificate verification failed for {host}:{port}: {exc.verify_message} "
            f"(kafka.ssl_cafile={kafka.ssl_cafile}, ssl_check_hostname={kafka.ssl_check_hostname})"
        )
    except (OSError, ValueError):
        pass
    return KafkaUnreachable(f"cannot reach Kafka at {kafka.bootstrap_servers} over TLS: {error}")
