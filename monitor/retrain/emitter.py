"""Where a retrain request goes: the Kafka topic (always) and a webhook (optional).

:class:`KafkaEmitter` sends the event keyed by model with ``acks=all`` and waits for
the broker's acknowledgement (bounded by ``publish_timeout_seconds``), so that a
request is marked published only once it is on the topic. :func:`post_webhook`
POSTs the same JSON with a bounded timeout; it is best effort (one try).
"""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

import orjson

from monitor.config import KafkaSettings

__all__ = ["EmitError", "KafkaEmitter", "post_webhook"]

log = logging.getLogger(__name__)


class EmitError(Exception):
    """The request could not be delivered (the caller counts it and retries later)."""


class KafkaEmitter:
    """A lazily connected producer for the retrain topic.

    Parameters
    ----------
    kafka
        Connection and security options (``kafka.client_options()``).
    topic
        ``retrain.topic``.
    timeout_seconds
        How long :meth:`send` waits for the broker's acknowledgement.
    """

    def __init__(self, kafka: KafkaSettings, topic: str, timeout_seconds: float = 10.0) -> None:
        self.kafka = kafka
        self.topic = topic
        self.timeout_seconds = timeout_seconds
        self._producer: Any = None

    def _connect(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(
                **self.kafka.client_options(), acks="all", retries=3,
                max_block_ms=int(self.timeout_seconds * 1000),
            )
        return self._producer

    def send(self, model: str, payload: dict[str, Any]) -> None:
        """Publish one request and wait until the broker acknowledged it.

        Raises
        ------
        EmitError
            The broker cannot be reached or did not acknowledge in time.
        """
        try:
            producer = self._connect()
            producer.send(self.topic, orjson.dumps(payload), key=model.encode()).get(timeout=self.timeout_seconds)
        except Exception as exc:
            self.close()
            raise EmitError(f"retrain request not published to {self.topic}: {exc}") from exc

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=2)
            except Exception as exc:  # noqa: BLE001 - closing a broken producer
                log.debug("closing the retrain producer: %s", exc)
            self._producer = None


def post_webhook(url: str, payload: dict[str, Any], timeout_seconds: float) -> None:
    """POST ``payload`` as JSON to ``url``; any non-2xx answer or network error raises EmitError."""
    request = urllib.request.Request(
        url, data=orjson.dumps(payload), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "driftd-retrain/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            if not 200 <= response.status < 300:
                raise EmitError(f"webhook {url} answered {response.status}")
    except EmitError:
        raise
    except Exception as exc:
        raise EmitError(f"webhook {url} failed: {exc}") from exc
