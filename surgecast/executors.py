"""Executors: push each tick's recommendations to where they act (off by default).

Recommendations are always published on the API (autoscalers poll it). An executor *pushes*
them: the webhook executor POSTs one JSON document per tick to each configured URL::

    {"source": "surgecast", "at": "...Z", "recommendations": [
        {"service": "bet-placement", "recommended_replicas": 19, "throttle_rps": null,
         "throttle": null, "stale": false, "valid_until": "...Z", "reason": "..."}]}

With ``dry_run`` (the default) nothing is sent; the tick logs what would have been. A failing
webhook is reported in the tick's errors and never stops the tick; the next tick sends the next
recommendations (a recommendation is a state, not an event: no retry queue is needed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pandas as pd

from actions.alerts import iso_utc

__all__ = ["ExecutionReport", "WebhookExecutor", "recommendations_document"]

log = logging.getLogger(__name__)


def recommendations_document(
    recommendations: Sequence[Mapping[str, Any]], at: pd.Timestamp
) -> dict[str, Any]:
    """The JSON body the webhook executor sends."""
    return {
        "source": "surgecast",
        "at": iso_utc(at),
        "recommendations": [
            {
                "service": r["service"],
                "recommended_replicas": int(r["recommended_replicas"]),
                "throttle_rps": r.get("throttle_rps"),
                "throttle": (r.get("inputs") or {}).get("throttle"),
                "stale": bool(r.get("stale", False)),
                "valid_until": iso_utc(r["valid_until"])
                if r.get("valid_until") is not None
                else None,
                "reason": r["reason"],
            }
            for r in recommendations
        ],
    }


@dataclass
class ExecutionReport:
    sent: int = 0
    dry_run: bool = True
    errors: list[tuple[str, str]] = field(default_factory=list)


class WebhookExecutor:
    """POST recommendations to webhooks (see the module docstring)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        dry_run: bool = True,
        timeout_s: float = 3.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.urls = list(urls)
        self.dry_run = dry_run
        self.timeout_s = timeout_s
        self._client = client

    def execute(
        self, recommendations: Sequence[Mapping[str, Any]], at: pd.Timestamp
    ) -> ExecutionReport:
        report = ExecutionReport(dry_run=self.dry_run)
        if not recommendations or not self.urls:
            return report
        body = recommendations_document(recommendations, at)
        if self.dry_run:
            log.info(
                "dry run: would push %d recommendation(s) to %d webhook(s): %s",
                len(recommendations), len(self.urls),
                ", ".join(f"{r['service']}={r['recommended_replicas']}" for r in recommendations),
            )  # fmt: skip
            return report
        client = self._client or httpx.Client(timeout=self.timeout_s)
        try:
            for url in self.urls:
                try:
                    response = client.post(url, json=body)
                    response.raise_for_status()
                    report.sent += 1
                except httpx.HTTPError as exc:
                    report.errors.append((url, f"push to {url} failed: {exc}"))
        finally:
            if self._client is None:
                client.close()
        return report
