"""Deliver the store's alert outbox to Alertmanager (v2 API) and generic webhooks, with retry.

:class:`OutboxDeliverer` reads the pending alerts that are due, POSTs them in batches to every
sink, and marks them delivered; on failure it schedules the next attempt with exponential
backoff (:class:`RetryPolicy`) and, past ``max_attempts`` or ``max_age``, gives up (status
``failed``, logged as an error). A sink outage therefore loses nothing: the alerts stay pending
and go out, once each, when it is back. Delivery is at least once per sink: a batch is delivered
when every sink accepted it, and a failing sink makes the whole batch retry, which Alertmanager
absorbs (one alert per label set, the latest sending wins).

Errors::

    SurgecastError
    └── DeliveryError        a sink refused or could not be reached (``permanent``: a 4xx
                             other than 408/429, so retrying the same body cannot help)

Example:
    >>> sink = AlertmanagerSink("http://127.0.0.1:9093/")
    >>> sink.endpoint
    'http://127.0.0.1:9093/api/v2/alerts'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import pandas as pd

from actions.alerts import as_utc
from surgecast.clock import Clock, system_clock
from surgecast.config import AlertingSettings
from surgecast.errors import SurgecastError

__all__ = [
    "AlertSink",
    "AlertmanagerSink",
    "DeliveryError",
    "DeliveryReport",
    "Outbox",
    "OutboxDeliverer",
    "RetryPolicy",
    "WebhookSink",
    "build_deliverer",
]

log = logging.getLogger(__name__)

# a client error on these may pass: the server asks us to come back later
_RETRYABLE_CLIENT_CODES = {408, 425, 429}


class DeliveryError(SurgecastError):
    """A sink refused a batch or could not be reached.

    Attributes:
        permanent: retrying the same body cannot succeed (the sink rejected it as invalid).
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class AlertSink(Protocol):
    """Something alerts are POSTed to; ``send`` raises :class:`DeliveryError` on failure."""

    name: str

    def send(self, alerts: Sequence[Mapping[str, Any]], now: pd.Timestamp) -> None: ...


class Outbox(Protocol):
    """The part of :class:`surgecast.store.Store` the deliverer uses."""

    def pending_alerts(self, now: Any, limit: int = 100) -> list[dict[str, Any]]: ...

    def mark_alert_delivered(self, alert_id: int, at: Any) -> None: ...

    def mark_alert_failed(self, alert_id: int, error: str, next_attempt_at: Any) -> None: ...


def _post_json(
    name: str, url: str, body: Any, timeout_seconds: float, transport: httpx.BaseTransport | None
) -> None:
    """POST ``body`` as JSON; any failure becomes a :class:`DeliveryError` naming ``url``."""
    try:
        with httpx.Client(timeout=timeout_seconds, transport=transport) as client:
            response = client.post(url, json=body)
    except httpx.TimeoutException as exc:
        raise DeliveryError(
            f"{name} {url}: no answer within {timeout_seconds:g} s ({exc})"
        ) from exc
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{name} {url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        code = response.status_code
        permanent = 400 <= code < 500 and code not in _RETRYABLE_CLIENT_CODES
        text = response.text.strip().replace("\n", " ")[:300]
        raise DeliveryError(f"{name} {url} answered HTTP {code}: {text}", permanent=permanent)


class AlertmanagerSink:
    """POST alerts to Alertmanager's ``/api/v2/alerts`` (a JSON array of v2 alerts).

    Args:
        url: Alertmanager's base URL, e.g. ``http://alertmanager:9093``.
        timeout_seconds: connect/read timeout of each request.
        transport: an ``httpx`` transport (tests; default: the network).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.name = "alertmanager"
        self.timeout_seconds = timeout_seconds
        self.transport = transport

    def send(self, alerts: Sequence[Mapping[str, Any]], now: pd.Timestamp) -> None:
        """POST ``alerts`` as they are (startsAt/endsAt already set by the lifecycle)."""
        _post_json(self.name, self.endpoint, list(alerts), self.timeout_seconds, self.transport)


class WebhookSink:
    """POST alerts to a generic webhook: ``{"source": "surgecast", "alerts": [...]}``.

    Each alert is the Alertmanager v2 alert plus ``status`` (``firing``, or ``resolved`` once its
    ``endsAt`` has passed). Delivery is at least once: receivers de-duplicate on the labels.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = url
        self.name = "webhook"
        self.timeout_seconds = timeout_seconds
        self.transport = transport

    def send(self, alerts: Sequence[Mapping[str, Any]], now: pd.Timestamp) -> None:
        body = {"source": "surgecast", "alerts": [_with_status(a, now) for a in alerts]}
        _post_json(self.name, self.endpoint, body, self.timeout_seconds, self.transport)


def _with_status(alert: Mapping[str, Any], now: pd.Timestamp) -> dict[str, Any]:
    ends = alert.get("endsAt")
    resolved = ends is not None and pd.Timestamp(ends) <= now
    return {**alert, "status": "resolved" if resolved else "firing"}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: the n-th retry waits ``min(base * factor**(n-1), cap)``.

    An alert is given up (status ``failed``) when its failed attempts reach ``max_attempts`` or
    it is older than ``max_age``.

    Example:
        >>> p = RetryPolicy()
        >>> [p.delay(n).total_seconds() for n in range(7)]
        [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    """

    base: pd.Timedelta = pd.Timedelta(seconds=10)
    factor: float = 2.0
    cap: pd.Timedelta = pd.Timedelta(minutes=5)
    max_attempts: int = 300
    max_age: pd.Timedelta = pd.Timedelta(days=1)

    def __post_init__(self) -> None:
        if self.base <= pd.Timedelta(0) or self.cap < self.base:
            raise ValueError(f"need 0 < base <= cap, got base={self.base}, cap={self.cap}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def delay(self, failed_before: int) -> pd.Timedelta:
        """The wait after a failure, given how many attempts had failed before it."""
        seconds = self.base.total_seconds() * self.factor ** min(failed_before, 64)
        return min(pd.Timedelta(seconds=seconds), self.cap)

    def next_attempt(
        self, created_at: pd.Timestamp, failed_before: int, now: pd.Timestamp
    ) -> pd.Timestamp | None:
        """When to retry after a failure at ``now``; ``None``: give up."""
        if failed_before + 1 >= self.max_attempts or now - created_at >= self.max_age:
            return None
        return now + self.delay(failed_before)


@dataclass
class DeliveryReport:
    """What one :meth:`OutboxDeliverer.deliver_due` run did."""

    now: pd.Timestamp
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class OutboxDeliverer:
    """Send the outbox's due alerts to every sink; retry with backoff; never raise per alert.

    Args:
        outbox: the store (its alert outbox methods).
        sinks: where alerts go; none means alerts just queue (logged once).
        retry: backoff and give-up rules.
        batch_size: alerts per POST.
        clock: the time used when ``deliver_due`` gets no ``now``.
    """

    def __init__(
        self,
        outbox: Outbox,
        sinks: Sequence[AlertSink],
        retry: RetryPolicy | None = None,
        *,
        batch_size: int = 100,
        clock: Clock = system_clock,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.outbox = outbox
        self.sinks = list(sinks)
        self.retry = retry or RetryPolicy()
        self.batch_size = batch_size
        self.clock = clock
        self._said_no_sink = False

    def deliver_due(self, now: pd.Timestamp | None = None) -> DeliveryReport:
        """Deliver every alert due at ``now`` (default: the clock), batch after batch.

        Stops at the first batch a sink could not take (the others wait for the retry), so an
        outage costs one failed request per run, not one per alert.
        """
        now = as_utc(now if now is not None else self.clock())
        report = DeliveryReport(now=now)
        if not self.sinks:
            if not self._said_no_sink:
                log.warning(
                    "alerting: no Alertmanager or webhook configured (alerting.alertmanager_urls, "
                    "alerting.webhook_urls); alerts stay queued in the outbox"
                )
                self._said_no_sink = True
            return report
        while True:
            due = self.outbox.pending_alerts(now, limit=self.batch_size)
            if not due:
                return report
            if not self._deliver_batch(due, now, report) or len(due) < self.batch_size:
                return report

    def _deliver_batch(
        self, rows: list[dict[str, Any]], now: pd.Timestamp, report: DeliveryReport
    ) -> bool:
        """Send ``rows``; True when all were settled (delivered or given up)."""
        try:
            self._send_everywhere([r["payload"] for r in rows], now)
        except DeliveryError as exc:
            if exc.permanent and len(rows) > 1:
                # one bad alert must not block the rest: find it by sending one at a time
                return all(self._deliver_batch([row], now, report) for row in rows)
            for row in rows:
                self._failed(row, exc, now, report)
            return exc.permanent
        for row in rows:
            self.outbox.mark_alert_delivered(int(row["id"]), at=now)
        report.delivered += len(rows)
        return True

    def _send_everywhere(self, payloads: list[Any], now: pd.Timestamp) -> None:
        errors: list[DeliveryError] = []
        for sink in self.sinks:
            try:
                sink.send(payloads, now)
            except DeliveryError as exc:
                errors.append(exc)
        if errors:
            permanent = all(e.permanent for e in errors)
            raise DeliveryError("; ".join(str(e) for e in errors), permanent=permanent)

    def _failed(
        self, row: dict[str, Any], exc: DeliveryError, now: pd.Timestamp, report: DeliveryReport
    ) -> None:
        alert_id, attempts = int(row["id"]), int(row["attempts"])
        error = str(exc)
        retry_at = (
            None if exc.permanent else self.retry.next_attempt(row["created_at"], attempts, now)
        )
        self.outbox.mark_alert_failed(alert_id, error, next_attempt_at=retry_at)
        if retry_at is None:
            report.given_up += 1
            log.error(
                "alerting: GAVE UP on alert %d (%s) after %d attempt(s), created %s: %s; it will "
                "not be delivered",
                alert_id, row["dedup_key"], attempts + 1, row["created_at"], error,
            )  # fmt: skip
        else:
            report.retrying += 1
            log.warning(
                "alerting: alert %d (%s) not delivered (attempt %d), retry at %s: %s",
                alert_id, row["dedup_key"], attempts + 1, retry_at, error,
            )  # fmt: skip
        if error not in report.errors:
            report.errors.append(error)


def build_deliverer(
    settings: AlertingSettings, outbox: Outbox, *, clock: Clock = system_clock
) -> OutboxDeliverer:
    """The deliverer the ``alerting`` settings describe."""
    timeout = settings.timeout_seconds
    sinks: list[AlertSink] = [
        AlertmanagerSink(url, timeout_seconds=timeout) for url in settings.alertmanager_urls
    ]
    sinks += [WebhookSink(url, timeout_seconds=timeout) for url in settings.webhook_urls]
    retry = RetryPolicy(
        base=pd.Timedelta(seconds=settings.backoff_base_seconds),
        factor=settings.backoff_factor,
        cap=pd.Timedelta(seconds=settings.backoff_max_seconds),
        max_attempts=settings.max_attempts,
        max_age=pd.Timedelta(seconds=settings.max_age_seconds),
    )
    return OutboxDeliverer(outbox, sinks, retry, batch_size=settings.batch_size, clock=clock)
