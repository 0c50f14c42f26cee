"""Bearer-token authentication of the API: tokens from ``api.tokens`` with a ``read`` or an
``operator`` scope.

- Write endpoints always need an ``operator`` token: no token configured means no writes.
- Read endpoints (GET, including ``/metrics`` and ``/v1/scaling``) are open unless
  ``api.read_requires_token`` is set; then a ``read`` or ``operator`` token is needed.
- A missing or unknown token is **401** (with ``WWW-Authenticate: Bearer``); a valid token
  whose scope is too low is **403**. ``/healthz`` and ``/readyz`` are always open (probes).

Tokens are compared in constant time; they never appear in logs, errors or the audit log (the
token's ``name`` does).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from surgecast.config import ApiSettings

__all__ = ["AUTH_RESPONSES", "AuthError", "Principal", "TokenAuth"]

_SCOPES = {"read": 0, "operator": 1}


class AuthError(Exception):
    """A request without the credentials it needs (401) or the scope (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Principal:
    """Who made a request: the token's name and scope (``anonymous`` on open reads)."""

    name: str
    scope: str


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or invalid bearer token"},
    403: {"description": "the token's scope does not allow this"},
}


class TokenAuth:
    """FastAPI dependencies checking ``Authorization: Bearer <token>`` against ``settings``."""

    def __init__(self, settings: ApiSettings) -> None:
        self._tokens = [
            (t.token.get_secret_value().encode(), Principal(t.name, t.scope)) for t in settings.tokens
        ]
        self.read_requires_token = settings.read_requires_token
        self._bearer = HTTPBearer(auto_error=False, description="an api.tokens entry")

    def identify(self, token: str | None) -> Principal | None:
        """The principal of ``token``, or ``None`` if it matches no configured token."""
        if not token:
            return None
        given = token.encode()
        found = None
        for secret, principal in self._tokens:  # compare with every token: no timing hint
            if hmac.compare_digest(secret, given):
                found = principal
        return found

    def require(self, scope: str) -> Callable[..., Awaitable[Principal]]:
        """A dependency that admits requests whose token has at least ``scope``."""
        if scope not in _SCOPES:
            raise ValueError(f"unknown scope {scope!r}; expected one of {sorted(_SCOPES)}")

        async def dependency(  # async: no thread-pool hop on the hot scaling path
            credentials: HTTPAuthorizationCredentials | None = Depends(self._bearer),
        ) -> Principal:
            hint = "" if self._tokens else " (no api.tokens are configured on this server)"
            if credentials is None or credentials.scheme.lower() != "bearer":
                raise AuthError(401, f"this endpoint needs 'Authorization: Bearer <token>'{hint}")
            principal = self.identify(credentials.credentials)
            if principal is None:
                raise AuthError(401, f"the bearer token is not valid{hint}")
            if _SCOPES[principal.scope] < _SCOPES[scope]:
                raise AuthError(
                    403, f"token {principal.name!r} has scope {principal.scope!r}; this needs {scope!r}"
                )
            return principal

        return dependency

    def read_dependencies(self) -> list[Any]:
        """Dependencies for read routes: none when reads are open."""
        return [Depends(self.require("read"))] if self.read_requires_token else []

    def read_responses(self) -> dict[int | str, dict[str, Any]]:
        return dict(AUTH_RESPONSES) if self.read_requires_token else {}
