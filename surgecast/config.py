"""One typed settings tree for the whole service, loaded from YAML plus environment overrides.

``load_settings(path)`` reads a YAML file (``surgecast.yaml``); ``SURGECAST_*`` environment
variables override any key, nested with ``__`` (``SURGECAST_STORE__URL=postgresql+psycopg://...``).
With no file the embedded defaults apply: the built-in simulator as source, every simulated series
watched, a SQLite store in ``./var``, a tick each minute, API and dashboard on 127.0.0.1.

Every model forbids unknown keys, so a misspelt key fails at start with the file, the key and what
was expected, instead of being silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from surgecast.errors import ConfigError

__all__ = [
    "AlertingSettings",
    "ApiSettings",
    "ApiToken",
    "DashboardSettings",
    "DetectSettings",
    "FileSource",
    "ForecastSettings",
    "PrometheusSource",
    "SeriesSettings",
    "ServiceSettings",
    "Settings",
    "SimulatorSource",
    "StoreSettings",
    "load_settings",
]

DEFAULT_CONFIG_FILE = "surgecast.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_step(value: str) -> str:
    try:
        step = pd.Timedelta(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration such as '1min', '5min' or '60s'") from None
    if step <= pd.Timedelta(0):
        raise ValueError(f"step {value!r} must be positive")
    return value


Step = Annotated[str, AfterValidator(_check_step)]


class SimulatorSource(_Model):
    """The built-in betting-platform simulator (the embedded default source)."""

    type: Literal["simulator"] = "simulator"
    seed: int = 7
    step: Step = Field("1min", description="grid step of the simulated series (pandas offset)")
    speed: float = Field(1.0, gt=0, description="simulated seconds per real second (demos)")
    incidents_per_day: float = Field(0.35, ge=0, description="mean incident rate; 0 disables")


class PrometheusSource(_Model):
    """A Prometheus (or PromQL-compatible) server."""

    type: Literal["prometheus"] = "prometheus"
    url: str = Field("http://127.0.0.1:9090", description="base URL, without /api/v1")
    step: Step = Field("1min", description="query step (whole seconds); series points land on it")
    timeout_seconds: float = Field(10.0, gt=0, description="per HTTP request")
    bearer_token: str | None = Field(None, description="sent as Authorization: Bearer ...")
    bearer_token_file: str | None = Field(None, description="read the token from this file")
    basic_auth_username: str | None = None
    basic_auth_password: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. X-Scope-OrgID")
    verify_tls: bool = Field(True, description="verify the server certificate")
    ca_file: str | None = Field(None, description="CA bundle for the server certificate")
    cert_file: str | None = Field(None, description="client certificate (mutual TLS)")
    key_file: str | None = Field(None, description="client key, if not inside cert_file")
    retries: int = Field(2, ge=0, le=10, description="retries of a failed request")
    backoff_seconds: float = Field(0.5, ge=0, description="first retry wait; doubles each time")
    breaker_failures: int = Field(3, ge=1, description="failed fetches in a row that open the breaker")
    breaker_reset_seconds: float = Field(30.0, ge=0, description="then one trial fetch after this")
    max_points_per_query: int = Field(10_000, ge=2, le=11_000, description="Prometheus allows 11,000")
    fixtures_file: str | None = Field(
        None, description="fixtures calendar (CSV/JSON) of this platform: known future events"
    )

    @model_validator(mode="after")
    def _auth(self) -> PrometheusSource:
        if (self.bearer_token or self.bearer_token_file) and self.basic_auth_username:
            raise ValueError("give either a bearer token or basic auth, not both")
        if self.bearer_token and self.bearer_token_file:
            raise ValueError("give bearer_token or bearer_token_file, not both")
        if (self.basic_auth_password is not None) and not self.basic_auth_username:
            raise ValueError("basic_auth_password needs basic_auth_username")
        if pd.Timedelta(self.step).total_seconds() % 1:
            raise ValueError(f"step {self.step!r} must be a whole number of seconds")
        return self


class FileSource(_Model):
    """Series from a CSV or Parquet file (``unique_id,ds,y``, or ``timestamp,value`` for one
    series), re-read when it changes; optionally a fixtures calendar beside it."""

    type: Literal["file"] = "file"
    path: str = Field(description="CSV or Parquet file")
    step: Step = "1min"
    fixtures_file: str | None = Field(None, description="fixtures calendar (CSV/JSON)")


SourceSettings = Annotated[
    SimulatorSource | PrometheusSource | FileSource, Field(discriminator="type")
]


class SeriesSettings(_Model):
    """One series to watch: ``unique_id`` is ``service:metric``."""

    service: str
    metric: str
    source: str = "simulator"
    simulator: str | None = Field(
        None, description="simulator series name (default service:metric)"
    )
    # PromQL of a prometheus source; with service: '{label}' one query yields a series per
    # configured service, named from that label (surgecast/prometheus_source.py)
    promql: str | None = None
    counter: bool = False  # promql returns a raw counter: convert it to a per-second rate

    @property
    def unique_id(self) -> str:
        return f"{self.service}:{self.metric}"

    @property
    def query(self) -> str:
        return self.promql or self.simulator or self.unique_id


class TrafficClassSettings(_Model):
    """One class of a service's requests, for throttling advice (see ``actions/throttle.py``)."""

    name: str = Field(min_length=1, description="route or endpoint group a gateway matches")
    priority: Literal["critical", "high", "normal", "low"] = Field(
        "normal", description="critical classes are queued, never shed"
    )
    share: float = Field(gt=0, le=1, description="share of the service's load")


class ServiceSettings(_Model):
    """Capacity facts of one scaled service."""

    load_metric: str = Field(
        "requests_per_second", description="metric whose forecast drives replicas"
    )
    capacity_per_replica: float = Field(gt=0, description="requests/s one replica serves at 100%")
    target_utilization: float = Field(0.7, gt=0, le=1)
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(50, ge=1)
    startup_delay_seconds: int = Field(300, ge=0, description="time a new replica needs to serve")
    margin_seconds: int = Field(300, ge=0, description="extra look-ahead beyond the startup delay")
    max_step_up: int = Field(0, ge=0, description="most replicas added per decision (0 = no limit)")
    max_step_down: int = Field(
        0, ge=0, description="most replicas removed per decision (0 = no limit)"
    )
    scale_down_stabilization_seconds: int = Field(
        300, ge=0, description="scale down only to the highest count wanted in this window"
    )
    scale_down_cooldown_seconds: int = Field(
        0, ge=0, description="at least this long between two scale-downs (scale-ups never wait)"
    )
    traffic_classes: list[TrafficClassSettings] = Field(
        default_factory=lambda: [TrafficClassSettings(name="all", priority="critical", share=1.0)],
        description="how the load splits by priority, for throttling advice",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ServiceSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        names = [c.name for c in self.traffic_classes]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"traffic_classes need unique names, got {names}")
        total = sum(c.share for c in self.traffic_classes)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"traffic_classes shares must add up to 1, got {total:.6g}")
        return self


class StoreSettings(_Model):
    url: str = "sqlite:///./var/surgecast.db"


class ApiToken(_Model):
    """One bearer token of the API (``Authorization: Bearer <token>``)."""

    name: str = Field(min_length=1, description="who holds it (shown in the audit log)")
    token: SecretStr = Field(description="the secret; at least 16 characters")
    scope: Literal["read", "operator"] = Field(
        "read", description="read: GET endpoints; operator: also the write endpoints"
    )

    @model_validator(mode="after")
    def _long_enough(self) -> ApiToken:
        if len(self.token.get_secret_value()) < 16:
            raise ValueError(f"token {self.name!r} is shorter than 16 characters; use a random one")
        return self


class ApiSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    tokens: list[ApiToken] = Field(
        default_factory=list,
        description="bearer tokens (env: SURGECAST_API__TOKENS as a JSON list); none: no writes",
    )
    read_requires_token: bool = Field(
        False, description="GET endpoints (also /metrics, /v1/scaling) need a read or operator token"
    )
    scaling_cache_seconds: float = Field(
        5.0, ge=0, description="refresh the in-memory scaling answers this often (0: every request)"
    )

    @model_validator(mode="after")
    def _unique_tokens(self) -> ApiSettings:
        names = [t.name for t in self.tokens]
        secrets = [t.token.get_secret_value() for t in self.tokens]
        if len(set(names)) != len(names) or len(set(secrets)) != len(secrets):
            raise ValueError("api.tokens need unique names and unique tokens")
        return self


class DashboardSettings(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8501, ge=1, le=65535)
    api_url: str | None = Field(
        None, description="API the dashboard reads (default: the local API)"
    )


class ForecastSettings(_Model):
    model: Literal["seasonal_naive", "seasonal_naive_7d", "seasonal_mean_7d", "seasonal_mean_1d", "mstl", "ets"] = Field(
        "seasonal_naive", description="model used until the retrain job has chosen one per series"
    )
    refit_minutes: int = Field(15, ge=1, description="refit a chosen (non-floor) model this often")
    retrain_window_days: float = Field(14, gt=0, description="history the retrain job backtests on")
    retrain_backtest_windows: int = Field(5, ge=1, le=20)
    retrain_jobs: int = Field(1, ge=1, description="parallel fits of the retrain job (joblib)")
    retrain_at_start_minutes: int | None = Field(
        3, ge=0, description="also retrain this long after start (None: only the daily job)"
    )
    level: float = Field(0.9, gt=0, lt=1)
    history_days: float = Field(14, gt=0, description="training window")
    extra_horizon_minutes: int = Field(30, ge=0, description="forecast beyond the lead window")
    event_model: Literal["seasonal_events", "none"] = Field(
        "seasonal_events", description="event-aware model for the series that drive replicas"
    )
    event_refit_minutes: int = Field(15, ge=1, description="refit the event model this often")
    event_history_days: float = Field(14, gt=0, description="training window of the event model")


class DetectSettings(_Model):
    detector: Literal["novelty", "robust_zscore"] = Field(
        "novelty", description="per-series detector of volumes (ratios, latency and error drift and "
        "absence always run)"
    )
    threshold: float = Field(4.0, gt=0)
    history_days: float = Field(7, gt=0)
    absent_grace_steps: int = Field(3, ge=0, description="missing points before 'absent'")
    multivariate: bool = Field(
        False,
        description="add the per-service IsolationForest detector (off: it found nothing the "
        "others missed in bench_incidents and doubled the alarms)",
    )
    rescore_minutes: int = Field(
        60, ge=1, description="at most this much recent history is scored after a backfill"
    )


def _check_base_url(value: str) -> str:
    url = value.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    if url.endswith("/api/v2/alerts"):
        raise ValueError(
            f"give Alertmanager's base URL (e.g. http://alertmanager:9093), not {value!r}: "
            "/api/v2/alerts is added"
        )
    return url


def _check_url(value: str) -> str:
    if not value.strip().startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value.strip()


AlertmanagerUrl = Annotated[str, AfterValidator(_check_base_url)]
WebhookUrl = Annotated[str, AfterValidator(_check_url)]


class AlertingSettings(_Model):
    """Where alerts go and how the outbox retries them (no sink: alerts only queue)."""

    alertmanager_urls: list[AlertmanagerUrl] = Field(
        default_factory=list, description="Alertmanager base URLs; each gets every alert"
    )
    webhook_urls: list[WebhookUrl] = Field(
        default_factory=list, description="generic webhooks: POST {source, alerts: [...]}"
    )
    env: str = Field("prod", min_length=1, description="the 'env' label of every alert")
    timeout_seconds: float = Field(5.0, gt=0, description="per HTTP request")
    delivery_interval_seconds: int = Field(15, ge=1, description="outbox delivery job period")
    batch_size: int = Field(100, ge=1, le=1000, description="alerts per POST")
    resend_interval_seconds: int = Field(
        60, ge=1, description="re-send active alerts this often (Alertmanager: 30 s to 3 min)"
    )
    backoff_base_seconds: float = Field(10.0, gt=0, description="first retry after a failure")
    backoff_factor: float = Field(2.0, ge=1, description="each further retry waits this much more")
    backoff_max_seconds: float = Field(300.0, gt=0, description="longest wait between retries")
    max_attempts: int = Field(300, ge=1, description="then the alert is marked failed")
    max_age_seconds: int = Field(86_400, ge=1, description="then an undelivered alert is failed")

    @model_validator(mode="after")
    def _backoff(self) -> AlertingSettings:
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError(
                f"backoff_max_seconds ({self.backoff_max_seconds}) is below backoff_base_seconds "
                f"({self.backoff_base_seconds})"
            )
        return self


def _classes(*rows: tuple[str, str, float]) -> list[dict[str, Any]]:
    return [{"name": n, "priority": p, "share": s} for n, p, s in rows]


class ExecutorSettings(_Model):
    """Pushing recommendations somewhere (they are always published on the API). Off by default:
    with ``dry_run`` the tick only logs what it would send."""

    dry_run: bool = Field(True, description="log what would be pushed, push nothing")
    webhook_urls: list[WebhookUrl] = Field(
        default_factory=list, description="POST each tick's recommendations here as JSON"
    )
    timeout_seconds: float = Field(3.0, gt=0, description="per HTTP request")


_DEFAULT_SERVICES: dict[str, dict[str, Any]] = {
    "odds-api": {
        "capacity_per_replica": 250, "min_replicas": 2, "max_replicas": 60,
        "traffic_classes": _classes(("odds-live", "high", 0.35), ("odds-prematch", "normal", 0.5),
                                    ("odds-polling-bots", "low", 0.15)),
    },
    "bet-placement": {
        "capacity_per_replica": 60, "min_replicas": 2, "max_replicas": 60,
        "traffic_classes": _classes(("place-bet", "critical", 0.7), ("cash-out", "high", 0.15),
                                    ("bet-history", "low", 0.15)),
    },
    "account": {
        "capacity_per_replica": 80, "min_replicas": 2, "max_replicas": 30,
        "traffic_classes": _classes(("login", "high", 0.5), ("profile", "normal", 0.3),
                                    ("promotions", "low", 0.2)),
    },
    "payments": {
        "capacity_per_replica": 40, "min_replicas": 2, "max_replicas": 20,
        "traffic_classes": _classes(("deposit", "critical", 0.6), ("withdrawal", "high", 0.3),
                                    ("payment-history", "low", 0.1)),
    },
}


class Settings(BaseSettings):
    """The whole service configuration. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix="SURGECAST_", env_nested_delimiter="__"
    )

    tick_interval_seconds: int = Field(60, ge=1)
    backfill_days: float = Field(28, ge=0, description="history pulled on the first tick")
    stale_after_seconds: int = Field(300, ge=1, description="newest point older than this = stale")
    sources: dict[str, SourceSettings] = Field(
        default_factory=lambda: {"simulator": SimulatorSource()}
    )
    series: list[SeriesSettings] | None = Field(
        None, description="series to watch; default: every series of the simulator source"
    )
    services: dict[str, ServiceSettings] = Field(
        default_factory=lambda: {k: ServiceSettings(**v) for k, v in _DEFAULT_SERVICES.items()}
    )
    store: StoreSettings = Field(default_factory=StoreSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    detect: DetectSettings = Field(default_factory=DetectSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    executors: ExecutorSettings = Field(default_factory=ExecutorSettings)
    models_dir: str = Field("./var/models", description="where the registry writes fitted models")
    retrain_cron_hour: int = Field(3, ge=0, le=23, description="UTC hour of the daily retrain job")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # environment beats the file: operators override one key without editing YAML
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _references(self) -> Settings:
        seen: set[str] = set()
        for s in self.series or []:
            if s.unique_id in seen:
                raise ValueError(
                    f"series {s.unique_id!r} is listed twice; each service:metric may appear once"
                )
            seen.add(s.unique_id)
            if s.source not in self.sources:
                raise ValueError(
                    f"series {s.unique_id!r} names source {s.source!r}, which is not among "
                    f"sources {sorted(self.sources)}"
                )
            if isinstance(self.sources[s.source], PrometheusSource) and not s.promql:
                raise ValueError(f"series {s.unique_id!r} reads Prometheus but has no 'promql'")
        for name, source in self.sources.items():
            step = pd.Timedelta(source.step)
            if step.total_seconds() >= self.stale_after_seconds:
                raise ValueError(
                    f"sources.{name}.step ({source.step}) is not shorter than stale_after_seconds "
                    f"({self.stale_after_seconds}): every recommendation would be stale; raise "
                    "stale_after_seconds to a few steps"
                )
        return self

    def service_load_series(self, service: str) -> str:
        return f"{service}:{self.services[service].load_metric}"


def _format_error(err: dict[str, Any], model: type[BaseModel]) -> str:
    raw_loc = _drop_union_tags(model, tuple(err.get("loc", ())))
    loc = ".".join(str(p) for p in raw_loc) or "(top level)"
    if err.get("type") == "extra_forbidden":
        allowed = _allowed_keys(model, tuple(err.get("loc", ()))[:-1])
        hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{loc}'{hint}"
    got = err.get("input")
    got_text = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
    return f"key '{loc}': {err.get('msg')}{got_text}"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at ``loc`` may hold, for the 'unknown key' hint."""
    current: Any = model
    for part in loc:
        current = _step_into(current, part)
        if current is None:
            return []
    models = _models_in(current)
    return sorted({k for m in models for k in m.model_fields})


def _drop_union_tags(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic puts a discriminated union's tag in ``loc``; the user never wrote it."""
    kept: list[Any] = []
    current: Any = model
    for part in loc:
        models = _models_in(current)
        if len(models) > 1 and any(_tag(m) == part for m in models):
            current = next(m for m in models if _tag(m) == part)
            continue
        kept.append(part)
        current = _step_into(current, part)
    return tuple(kept)


def _tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return field.default if field is not None else None


def _step_into(annotation: Any, part: Any) -> Any:
    models = _models_in(annotation)
    if len(models) > 1:
        tagged = [m for m in models if _tag(m) == part]
        if tagged:
            return tagged[0]
    for candidate in models:
        field = candidate.model_fields.get(str(part))
        if field is not None:
            return field.annotation
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]  # part was a key of the mapping
    if origin in (list, tuple, Sequence) and args:
        return args[0]
    for arg in args:  # Optional[...] / Annotated[...] wrappers
        found = _step_into(arg, part)
        if found is not None:
            return found
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (dict, list, tuple, Mapping, Sequence):
        return []
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load settings from ``path`` (or ``./surgecast.yaml`` if it exists, else defaults).

    Raises:
        ConfigError: the file is missing, not YAML, or a key is unknown or has a bad value; the
            message names the file, the key and what was expected.
    """
    data: dict[str, Any] = {}
    where = "embedded defaults"
    if (
        path is None
        and Path(DEFAULT_CONFIG_FILE).is_file()
        and "SURGECAST_CONFIG" not in os.environ
    ):
        path = DEFAULT_CONFIG_FILE
    path = path if path is not None else os.environ.get("SURGECAST_CONFIG")
    if path is not None:
        where = str(path)
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"{where}: config file not found; pass an existing YAML file")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{where}: the top level must be a mapping of keys, got {type(loaded).__name__}"
            )
        data = loaded
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "\n  ".join(_format_error(e, Settings) for e in exc.errors())  # type: ignore[arg-type]
        raise ConfigError(f"{where}: invalid configuration:\n  {problems}") from exc
