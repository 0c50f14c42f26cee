"""The dashboard's only way to the service: the surgecast HTTP API (a thin adapter).

Every failure becomes one of two exceptions with a message an SRE can act on, so a page shows a
banner, never a stack trace:

* :class:`ApiUnreachable`: no answer at all (refused, timed out, DNS);
* :class:`ApiError`: the API answered with an error status; ``detail`` is its message.

Example:
    >>> ApiClient("http://127.0.0.1:8000/").base_url
    'http://127.0.0.1:8000'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["ApiClient", "ApiError", "ApiUnreachable"]


class ApiUnreachable(Exception):
    """The API did not answer (connection refused, timeout, name not resolved)."""


class ApiError(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, detail: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body  # the parsed JSON answer, if any (a 503 /readyz still says why)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        return "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    return str(detail or body)[:300]


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@dataclass(frozen=True)
class ApiClient:
    """Reads and operator writes against one surgecast API.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000``.
        token: bearer token sent with every request (needed for writes, and for reads when the
            API sets ``read_requires_token``).
        timeout_s: per request; an autoscaler's 3 s is also a fair bound for a dashboard.
    """

    base_url: str
    token: str | None = None
    timeout_s: float = 3.0
    _headers: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        object.__setattr__(self, "_headers", headers)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``method path`` and its JSON body; raises :class:`ApiUnreachable` / :class:`ApiError`."""
        url = f"{self.base_url}{path}"
        try:
            response = httpx.request(
                method, url, headers=self._headers, timeout=self.timeout_s, **kwargs
            )
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(
                f"the surgecast API at {self.base_url} did not answer within {self.timeout_s:g} s"
            ) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(
                f"the surgecast API at {self.base_url} is unreachable ({type(exc).__name__}: {exc})"
            ) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response), _json_or_none(response))
        return response.json() if response.content else None

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body or {})
