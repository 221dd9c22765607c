"""Retrain requests: when drift persists or performance drops, emit one request per cooldown.

* :mod:`monitor.retrain.trigger` — a pure fold over window reports per key → decision;
* :mod:`monitor.retrain.request` — the versioned event (``schemas/retrain_request.v1.json``);
* :mod:`monitor.retrain.emitter` — Kafka topic and optional webhook;
* :mod:`monitor.retrain.service` — the pipeline sink: trigger → store (cooldown) → publish.

docs/retraining.md describes the event and its delivery semantics.
"""

from monitor.retrain.trigger import RetrainDecision, RetrainTrigger

__all__ = ["RetrainDecision", "RetrainTrigger"]
