"""The OpenAPI 3.1 description of the HTTP sidecar.

The event bodies are the published JSON Schemas (``schemas/prediction.v1.json``,
``schemas/label.v1.json``) embedded as they are, so the API and the Kafka contract
cannot drift apart. ``schemas/openapi.sidecar.json`` is this document written out;
regenerate it with ``python -m monitor.sidecar.openapi --write`` (a test compares).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["SCHEMAS_DIR", "openapi_document"]

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
OPENAPI_FILE = SCHEMAS_DIR / "openapi.sidecar.json"
MAX_BATCH_EVENTS = 10_000


# monitor.events.parse_timestamp accepts event times from 1970 to 3000 only; the JSON
# Schema's "date-time" format allows years 0000-9999. The pattern states the accepted
# years (conservatively, so that a UTC offset cannot carry a time across either end).
_YEARS = "^(197[1-9]|19[89][0-9]|2[0-8][0-9][0-9]|29[0-8][0-9])-"


def _event_schema(name: str) -> dict[str, Any]:
    schema = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
    # $schema/$id describe the standalone file; inside OpenAPI 3.1 the dialect is implied.
    schema = {key: value for key, value in schema.items() if key not in ("$schema", "$id")}
    for branch in schema["properties"]["timestamp"]["oneOf"]:
        if branch.get("type") == "string":
            branch["pattern"] = _YEARS
    timestamp = schema["properties"]["timestamp"]
    timestamp["description"] = (
        timestamp.get("description", "Event time.").rstrip(".") + ". Refused as bad_timestamp when more than limits.max_future_seconds "
        "(default 3600) ahead of the sidecar's clock: a wrong clock would move the daemon's watermark."
    )
    return schema


def _batch(ref: str) -> dict[str, Any]:
    return {
        "oneOf": [
            {"$ref": ref},
            {"type": "array", "items": {"$ref": ref}, "minItems": 1, "maxItems": MAX_BATCH_EVENTS},
        ]
    }


def _retry(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "Retry-After": {"description": "Seconds to wait before retrying the whole request.",
                            "schema": {"type": "string", "pattern": "^[0-9]+$"}, "required": True}
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refused"}}},
    }


def _ingest(kind: str, ref: str) -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "post": {
            "operationId": f"log_{kind}s",
            "summary": f"Log one {kind} event or a batch of them.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": _batch(ref)}}},
            "responses": {
                "202": {"description": "All events accepted into the buffer.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
                "400": {"description": "Not JSON, an empty or too long batch, or some events break the contract. "
                                       "Valid events of the batch were accepted (see `accepted`); do not retry.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rejected"}}}},
                "413": {"description": "Body too large.", "content": error},
                "429": _retry("Buffer full while Kafka is slow; nothing accepted."),
                "503": _retry("Buffer full and Kafka unreachable; nothing accepted."),
            },
        }
    }


def _probe(summary: str, ok: str, down: str) -> dict[str, Any]:
    body = {"application/json": {"schema": {"type": "object"}}}
    return {"get": {"summary": summary, "responses": {"200": {"description": ok, "content": body},
                                                      "503": {"description": down, "content": body}}}}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document as a dict (cached; treat as read-only)."""
    problem = {
        "type": "object",
        "required": ["index", "reason", "detail"],
        "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "Position in the batch (0 for a single event)."},
            "reason": {"type": "string", "description": "schema, bad_timestamp, too_large, ..."},
            "detail": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "driftd sidecar",
            "version": "1",
            "description": "Log predictions and labels for driftd over HTTP; they are validated against "
                           "the event contract, buffered, and delivered to Kafka in batches.",
        },
        "paths": {
            "/v1/predictions": _ingest("prediction", "#/components/schemas/Prediction"),
            "/v1/labels": _ingest("label", "#/components/schemas/Label"),
            "/healthz": _probe("Liveness: the delivery thread runs.", "alive", "delivery thread died"),
            "/readyz": _probe("Kafka reachable and buffer not full.", "ready", "Kafka unreachable or buffer full"),
            "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": {"200": {
                "description": "Text exposition format.", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document.", "responses": {"200": {
                "description": "OpenAPI 3.1.", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {
            "schemas": {
                "Prediction": _event_schema("prediction.v1.json"),
                "Label": _event_schema("label.v1.json"),
                "Accepted": {"type": "object", "required": ["accepted"],
                             "properties": {"accepted": {"type": "integer", "minimum": 1}}},
                "Problem": problem,
                "Rejected": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "detail": {"type": "string"},
                        "accepted": {"type": "integer", "minimum": 0},
                        "rejected": {"type": "integer", "minimum": 1},
                        "errors": {"type": "array", "maxItems": 100, "items": {"$ref": "#/components/schemas/Problem"}},
                    },
                },
                "Refused": {
                    "type": "object",
                    "required": ["error", "detail", "accepted"],
                    "properties": {
                        "error": {"enum": ["buffer_full", "kafka_unavailable"]},
                        "detail": {"type": "string"},
                        "accepted": {"const": 0},
                        "rejected": {"type": "integer"},
                        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Problem"}},
                    },
                },
                "Error": {"type": "object", "required": ["error", "detail"],
                          "properties": {"error": {"type": "string"}, "detail": {"type": "string"}}},
            }
        },
    }


def render() -> str:
    """The document as committed in ``schemas/openapi.sidecar.json``."""
    return json.dumps(openapi_document(), indent=2) + "\n"


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        OPENAPI_FILE.write_text(render(), encoding="utf-8")
        print(f"wrote {OPENAPI_FILE}")
    else:
        sys.stdout.write(render())
