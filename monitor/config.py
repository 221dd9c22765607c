"""Configuration: one frozen settings object built from YAML plus ``DRIFTD_*`` variables.

The entry point builds :class:`Settings` once (:func:`load_settings`) and hands the
parts each component needs down as arguments; nothing reads configuration at import
time. Environment variables override the YAML file, nested keys joined by ``__``::

    DRIFTD_KAFKA__BOOTSTRAP_SERVERS=broker:9092
    DRIFTD_STORE__URL=postgresql+psycopg://driftd@db/driftd

Every section forbids unknown keys, so a typo is an error that names the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from monitor.auth import AuthSettings
from monitor.kafka_settings import KafkaSettings
from monitor.retrain_settings import RetrainSettings

__all__ = ["ConfigError", "KafkaSettings", "ModelSettings", "RetrainSettings", "Settings", "load_settings"]


class ConfigError(ValueError):
    """A configuration problem, phrased for the person who wrote the file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSettings(_Section):
    """Event-time tumbling windows closed by a watermark."""

    size_seconds: int = Field(300, ge=1, le=7 * 86_400)
    allowed_lateness_seconds: int = Field(60, ge=0, le=7 * 86_400)
    # Low-traffic models: also close a window every N events (0 = off).
    count_trigger: int = Field(0, ge=0)
    # Windows with fewer events than this are closed but not tested for drift.
    min_events: int = Field(100, ge=1)
    # Bounded per-feature numeric sample kept per window (for KS, Wasserstein, multivariate).
    sample_size: int = Field(2000, ge=10, le=1_000_000)
    close_on_shutdown: bool = False  # SIGTERM closes open windows; default: they continue after the restart
    idle_timeout_seconds: float = Field(30.0, gt=0, le=86_400)  # read to its end and quiet: not holding back
    max_lead_seconds: float = Field(600.0, gt=0, le=7 * 86_400)  # this far ahead in event time: paused


class DriftSettings(_Section):
    """How features are tested and how a model-level decision is made."""

    numeric_method: str = "auto"
    categorical_method: str = "auto"
    # Error control across a model's features for p-value methods (alpha: the level without a budget).
    correction: Literal["bonferroni", "bh", "none"] = "bh"
    alpha: float = Field(0.05, gt=0, lt=1)
    drift_share_threshold: float = Field(0.3, gt=0, le=1)  # model drift: this share of features drifted
    # Multivariate drift of the numeric features per window ("none" to switch off).
    multivariate_method: str = "pca_reconstruction"
    # Per-method threshold overrides, e.g. {psi: 0.25}.
    thresholds: dict[str, float] = Field(default_factory=dict)
    # False drift alarms per model a day, split over segments and windows (detectors/budget.py)
    false_alarms_per_day: float | None = Field(0.1, gt=0)
    segments_per_model: int = Field(1, ge=1)
    alert_windows: int = Field(1, ge=1)


class FeatureSettings(_Section):
    """Per-feature overrides."""

    method: str | None = None
    threshold: float | None = None
    type: Literal["numeric", "categorical"] | None = None


class ModelSettings(_Section):
    """One monitored model."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    baseline: Path | None = None
    task: Literal["binary", "multiclass", "regression"] = "binary"
    # Binary classifiers: the positive class and the score threshold for the decision.
    positive_class: str = "1"
    decision_threshold: float = Field(0.5, ge=0, le=1)
    features: dict[str, FeatureSettings] = Field(default_factory=dict)
    model_file: Path | None = None
    model_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    trust_pickle: bool = False
    # Regression: a prediction further than this from its label (absolute error) is wrong and
    # explained (explain.explain_wrong); unset: never wrong. Classifiers: wrong class.
    wrong_abs_error: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _wrong_abs_error_for_regression(self) -> ModelSettings:
        if self.wrong_abs_error is not None and self.task != "regression":
            raise ValueError(
                f"wrong_abs_error applies to task regression only; model {self.name!r} has task "
                f"{self.task!r} (a classifier's prediction is wrong when its class is not the label)"
            )
        return self


class LimitSettings(_Section):
    """Hard caps that keep memory and metric cardinality bounded."""

    max_models: int = Field(50, ge=1)
    max_segments_per_model: int = Field(20, ge=1)
    # Versions of one model seen at once (each has windows, a baseline and series).
    max_versions_per_model: int = Field(10, ge=1)
    max_features_per_model: int = Field(500, ge=1)
    max_categories_per_feature: int = Field(50, ge=2)
    max_message_bytes: int = Field(1_048_576, ge=256)
    max_open_windows_per_key: int = Field(8, ge=1)
    # Events (predictions and labels) further ahead of the wall clock are bad_timestamp.
    max_future_seconds: float = Field(3600.0, gt=0)


class HttpSettings(_Section):
    """The daemon's port: /metrics, /healthz, /readyz and the alert receiver."""

    host: str = "127.0.0.1"
    port: int = Field(9108, ge=0, le=65_535)
    # Bearer token of POST /api/v1/alerts (and /metrics with auth.metrics); required off loopback.
    auth: AuthSettings = AuthSettings()


class SidecarSettings(_Section):
    """``driftd sidecar``: the token of POST /v1/predictions and /v1/labels."""

    auth: AuthSettings = AuthSettings()


class StoreSettings(_Section):
    # A SecretStr: a PostgreSQL URL carries its password (repr and logs show ***).
    url: SecretStr = SecretStr("sqlite:///driftd.db")
    retention_days: int = Field(90, ge=1)
    write_batch_size: int = Field(500, ge=1)


class LabelSettings(_Section):
    enabled: bool = True
    pending_ttl_seconds: int = Field(7 * 86_400, ge=1)
    max_pending: int = Field(1_000_000, ge=1)
    # Joined errors wait this long (event time) so sequential detectors see them in event-time order.
    settle_seconds: float = Field(600.0, ge=0)


class ExplainSettings(_Section):
    enabled: bool = False
    # pool: worker processes of the daemon; kafka: tasks on kafka.explain_topic for explain-workers.
    mode: Literal["pool", "kafka"] = "pool"
    workers: int = Field(1, ge=1, le=64)
    queue_size: int = Field(1000, ge=1)
    base_rate: float = Field(0.01, ge=0, le=1)
    near_threshold_band: float = Field(0.05, ge=0, le=0.5)
    drifted_window_rate: float = Field(0.05, ge=0, le=1)
    explain_wrong: bool = True
    max_per_second: float = Field(50.0, gt=0)
    attribution_threshold: float = Field(0.9, ge=0, le=1)


class CheckpointSettings(_Section):
    interval_seconds: float = Field(30.0, gt=0)


class AppSettings(_Section):
    url: str = "http://127.0.0.1:8501"
    port: int = Field(8501, ge=0, le=65_535)
    # SSO proxy header naming note authors (e.g. X-Forwarded-User), only behind a proxy that strips it.
    author_header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$")
    max_note_chars: int = Field(2000, ge=1, le=100_000)


class AlertSettings(_Section):
    """Generated Prometheus rules: links, durations and the thresholds of the quality alerts.

    The drift alerts themselves follow ``drift`` (method thresholds, drift share);
    docs/alerts.md explains each default.
    """

    runbook_base_url: str = "https://github.com/driftd/driftd/blob/main/docs/runbooks"
    grafana_url: str = "http://127.0.0.1:3000"
    for_duration: str = "5m"
    keep_firing_for: str = "10m"
    # Prometheus job that scrapes driftd (DriftdDown) and the range of rate() in the rules.
    job: str = "driftd"
    rate_window: str = "5m"
    # DriftdPerformanceDrop: the whole 95 % interval worse than the baseline by this share.
    performance_tolerance: float = Field(0.05, gt=0, lt=1)
    # DriftdCalibrationDrift: ECE above the baseline's by this much.
    ece_increase: float = Field(0.05, gt=0, le=1)
    # DriftdMissingValueSurge: missing ratio above the baseline's by this much.
    missing_increase: float = Field(0.10, gt=0, le=1)
    # DriftdUnseenCategories: share of categories the baseline never saw.
    unseen_ratio: float = Field(0.05, gt=0, le=1)
    # DriftdDeadLetterRate: dead-lettered share of all messages.
    dead_letter_ratio: float = Field(0.01, gt=0, le=1)
    # DriftdConsumerLagHigh: summed lag of a topic, in messages.
    consumer_lag: float = Field(10_000, gt=0)
    # DriftdExplainQueueSaturated: explanation queue fill ratio.
    explain_queue_ratio: float = Field(0.9, gt=0, le=1)
    # DriftdStaleWindows and the app: no window closed this long; unset: Settings.stale_window_seconds.
    stale_window_seconds: float | None = Field(None, gt=0)
    late_ratio: float = Field(0.05, gt=0, le=1)  # DriftdLateEvents and the app: late / all events
    # DriftdConceptDriftAlarm: this many sequential detectors alarmed within this window.
    concept_alarm_window: str = "30m"
    concept_alarm_detectors: int = Field(2, ge=1, le=3)


class Settings(BaseSettings):
    """Everything driftd needs, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTD_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    kafka: KafkaSettings = KafkaSettings()
    windows: WindowSettings = WindowSettings()
    drift: DriftSettings = DriftSettings()
    models: list[ModelSettings] = Field(default_factory=list)
    # Learn a baseline from the first N live events when a model has no baseline file.
    learn_baseline_events: int = Field(5000, ge=100)
    baseline_dir: Path = Path("baselines")
    limits: LimitSettings = LimitSettings()
    http: HttpSettings = HttpSettings()
    sidecar: SidecarSettings = SidecarSettings()
    store: StoreSettings = StoreSettings()
    labels: LabelSettings = LabelSettings()
    explain: ExplainSettings = ExplainSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    app: AppSettings = AppSettings()
    alerts: AlertSettings = AlertSettings()
    retrain: RetrainSettings = RetrainSettings()

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[ModelSettings]) -> list[ModelSettings]:
        names = [m.name for m in models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {duplicates}")
        return models

    @model_validator(mode="after")
    def _check_explain_store(self) -> Settings:
        url = self.store.url.get_secret_value()
        if self.explain.enabled and self.explain.mode == "kafka" and url.rstrip("/") in ("sqlite:", "sqlite:///:memory:"):
            raise ValueError(f"store.url {url!r}: explain.mode 'kafka' needs a store explain-workers can open (a SQLite file or PostgreSQL)")
        return self

    @model_validator(mode="after")
    def _check_methods(self) -> Settings:
        # Imported here so that detectors stay importable without monitor.
        from detectors.registry import REGISTRY

        def check(key: str, name: str | None, kind: str | None = None, per_feature: bool = False) -> None:
            if name is None or name == "auto":
                return
            if name not in REGISTRY:
                raise ValueError(
                    f"{key}: unknown method {name!r}; allowed: auto, {', '.join(sorted(REGISTRY))}"
                )
            if per_feature and REGISTRY[name].kinds == {"multivariate"}:
                per_feature = sorted(n for n, sp in REGISTRY.items() if sp.kinds - {"multivariate"})
                raise ValueError(f"{key}: {name!r} is a multivariate method; per-feature methods: auto, {', '.join(per_feature)}")
            if kind and kind not in REGISTRY[name].kinds:
                allowed = sorted(n for n, s in REGISTRY.items() if kind in s.kinds)
                raise ValueError(
                    f"{key}: method {name!r} does not apply to {kind} features; "
                    f"allowed: auto, {', '.join(allowed)}"
                )

        check("drift.numeric_method", self.drift.numeric_method, "numeric")
        if self.drift.multivariate_method != "none":
            check("drift.multivariate_method", self.drift.multivariate_method, "multivariate")
        check("drift.categorical_method", self.drift.categorical_method, "categorical")
        for method in self.drift.thresholds:
            check(f"drift.thresholds.{method}", method)
        for model in self.models:
            for feature, fs in model.features.items():
                check(f"models[{model.name}].features.{feature}.method", fs.method, fs.type, per_feature=True)
        return self

    @property
    def stale_window_seconds(self) -> float:
        """Age of a key's last window end (wall clock) that is stale: 2 windows + lateness unless set."""
        return float(self.alerts.stale_window_seconds or 2 * self.windows.size_seconds + self.windows.allowed_lateness_seconds)

    def model(self, name: str) -> ModelSettings | None:
        """The settings of model ``name``, or None when it is not configured."""
        for model in self.models:
            if model.name == name:
                return model
        return None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the YAML file (passed as init values).
        return env_settings, init_settings, file_secret_settings


# Values under these keys may be passwords or tokens (a store URL carries its password).
_SECRET_KEYS = {"token", "token_file", "url", "sasl_plain_password", "ssl_password"}


def _format_error(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        if _SECRET_KEYS & {str(part) for part in item["loc"]}:
            shown = " (value not shown: it may hold a secret)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "literal_error":
            message = message.replace("Input should be", "allowed values are")
        lines.append(f"  {key}: {message}{shown}")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from a YAML file (optional), the environment and overrides.

    Raises
    ------
    ConfigError
        When the file is missing or unreadable, or a key or value is not allowed;
        the message names each offending key, the value and what is allowed.
    """
    data: dict[str, Any] = {}
    source = "environment"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded
    data.update(overrides)
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, source)) from None
    if path is not None:
        settings = _resolve_paths(settings, Path(path).parent)
    return settings


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative file paths in the YAML file are relative to the file itself."""

    def resolve(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p)

    models = [
        m.model_copy(update={"baseline": resolve(m.baseline), "model_file": resolve(m.model_file)})
        for m in settings.models
    ]
    def auth(section: Any) -> Any:
        update = {"token_file": resolve(section.auth.token_file)}
        return section.model_copy(update={"auth": section.auth.model_copy(update=update)})

    return settings.model_copy(
        update={"models": models, "baseline_dir": resolve(settings.baseline_dir),
                "http": auth(settings.http), "sidecar": auth(settings.sidecar)}
    )

