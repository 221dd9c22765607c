"""Getting predictions into driftd without slowing the serving path.

Two ways in, one contract (``schemas/prediction.v1.json``, ``schemas/label.v1.json``):

* :class:`PredictionLogger`, in process: validate, encode with orjson, hand off to a
  bounded buffer drained into Kafka by a background thread;
* ``driftd sidecar``, an HTTP server beside the serving container for any language
  (:mod:`monitor.sidecar.http`), built on the same logger.

See ``docs/sidecar.md``.
"""

from monitor.sidecar.client import PredictionLogger
from monitor.sidecar.errors import InvalidEvent, KafkaUnreachable, LoggerClosed, SidecarError
from monitor.sidecar.outbox import DeliveryStats

__all__ = [
    "DeliveryStats",
    "InvalidEvent",
    "KafkaUnreachable",
    "LoggerClosed",
    "PredictionLogger",
    "SidecarError",
]
