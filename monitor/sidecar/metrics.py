"""Prometheus metrics of a :class:`~monitor.sidecar.PredictionLogger`.

:class:`LoggerCollector` reads :meth:`~monitor.sidecar.PredictionLogger.stats` at
scrape time, so the hot path updates plain integers and nothing else. Register it
on the serving application's own registry to export the in-process logger's health,
or let ``driftd sidecar`` do it on its private registry::

    from prometheus_client import REGISTRY
    REGISTRY.register(LoggerCollector(logger))

Names (``driftd_sidecar_*``) are listed in ``docs/sidecar.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from monitor.sidecar.outbox import LATENCY_BUCKETS

if TYPE_CHECKING:
    from monitor.sidecar.client import PredictionLogger

__all__ = ["LoggerCollector", "SidecarMetrics"]

# Values of the ``path`` label of driftd_sidecar_http_requests_total; anything else is "other".
HTTP_PATHS = ("/v1/predictions", "/v1/labels", "/healthz", "/readyz", "/metrics", "/openapi.json")


class LoggerCollector(Collector):
    """Exports the counters of one logger (accepted, rejected, dropped, sent, buffer, latency)."""

    def __init__(self, logger: PredictionLogger) -> None:
        self.logger = logger

    def collect(self) -> Iterator[Metric]:
        stats = self.logger.stats()
        yield CounterMetricFamily(
            "driftd_sidecar_events_accepted", "Events accepted into the buffer.", value=stats.accepted
        )
        rejected = CounterMetricFamily(
            "driftd_sidecar_events_rejected",
            "Events refused before the buffer: invalid (schema, bad_timestamp, too_large), "
            "or turned away by the HTTP sidecar (buffer_full, kafka_unavailable).",
            labels=["reason"],
        )
        for reason, count in sorted(stats.rejected.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily(
            "driftd_sidecar_events_dropped",
            "Events dropped by the in-process logger because the buffer was full.",
            value=stats.dropped,
        )
        yield CounterMetricFamily(
            "driftd_sidecar_events_sent", "Events acknowledged by Kafka.", value=stats.sent
        )
        yield CounterMetricFamily(
            "driftd_sidecar_send_errors",
            "Events whose delivery attempt failed; they were re-queued and retried.",
            value=stats.errors,
        )
        yield GaugeMetricFamily(
            "driftd_sidecar_buffer_events", "Events accepted but not yet acknowledged.", value=stats.buffered
        )
        yield GaugeMetricFamily(
            "driftd_sidecar_buffer_capacity_events", "Bound of the buffer.", value=stats.capacity
        )
        yield GaugeMetricFamily(
            "driftd_sidecar_buffer_bytes", "Encoded bytes accepted but not yet acknowledged.",
            value=stats.buffered_bytes,
        )
        yield GaugeMetricFamily(
            "driftd_sidecar_buffer_capacity_bytes", "Byte bound of the buffer.", value=stats.capacity_bytes
        )
        yield GaugeMetricFamily(
            "driftd_sidecar_buffer_fill_ratio",
            "Share of the buffer in use (0..1): the larger of the event and byte shares.",
            value=max(stats.buffered / stats.capacity, stats.buffered_bytes / stats.capacity_bytes),
        )
        yield GaugeMetricFamily(
            "driftd_sidecar_kafka_ready", "1 when Kafka is reachable and acknowledging events.",
            value=float(stats.ready),
        )
        buckets = []
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), stats.latency_counts):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily(
            "driftd_sidecar_send_latency_seconds",
            "Time from handing a chunk of events to the producer to its acknowledgement.",
            buckets=buckets,
            sum_value=stats.latency_sum,
        )


class SidecarMetrics:
    """The HTTP sidecar's private registry: the logger's collector plus request counts."""

    def __init__(self, logger: PredictionLogger, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(LoggerCollector(logger))
        self.requests = Counter(
            "driftd_sidecar_http_requests",
            "HTTP requests by path and status code.",
            ["path", "code"],
            registry=self.registry,
        )

    def request(self, path: str, code: int) -> None:
        self.requests.labels(path if path in HTTP_PATHS else "other", str(code)).inc()
