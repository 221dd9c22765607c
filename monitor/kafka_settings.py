"""The ``kafka`` section of the settings: where events come from, and how to connect.

Part of :mod:`monitor.config` (re-exported there); a module of its own because the
security options and their translation into kafka-python arguments are a concern
of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["KafkaSettings"]


class KafkaSettings(BaseModel):
    """Where events come from. Security options are passed through to kafka-python."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    predictions_topic: str = "driftd.predictions"
    labels_topic: str = "driftd.labels"
    dead_letter_topic: str = "driftd.dead-letter"
    group_id: str = "driftd"
    # explain.mode kafka: tasks for `driftd explain-worker`, a consumer group of its own.
    explain_topic: str = "driftd.explain-tasks"
    explain_group_id: str = "driftd-explain"
    client_id: str = "driftd"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_poll_records: int = Field(5000, ge=1, le=100_000)
    poll_timeout_ms: int = Field(200, ge=1, le=60_000)
    # kafka-python's default (300 s) stalls group joins on some brokers; tests set it small.
    max_poll_interval_ms: int = Field(300_000, ge=1_000)
    session_timeout_ms: int = Field(10_000, ge=1_000)
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    request_timeout_ms: int = Field(30_000, ge=1_000)
    reconnect_backoff_max_ms: int = Field(10_000, ge=50)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    def client_options(self) -> dict[str, Any]:
        """Connection and security options shared by consumers and producers."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
            "reconnect_backoff_max_ms": self.reconnect_backoff_max_ms,
        }
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_plain_username
            if self.sasl_plain_password is not None:
                options["sasl_plain_password"] = self.sasl_plain_password.get_secret_value()
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_check_hostname"] = self.ssl_check_hostname
            for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                value = getattr(self, key)
                if value is not None:
                    options[key] = str(value)
            if self.ssl_password is not None:
                options["ssl_password"] = self.ssl_password.get_secret_value()
        return options
