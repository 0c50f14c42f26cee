"""Bearer-token auth: 401 without a valid token, 403 with too low a scope; reads open or
protected by config; tokens from the environment."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from surgecast.api import create_app
from surgecast.config import Settings
from surgecast.errors import ConfigError
from surgecast.store import Store

READ = "read-token-abcdefghijklmnop"
OPERATOR = "operator-token-0123456789"
TOKENS = [
    {"name": "keda", "token": READ, "scope": "read"},
    {"name": "ops", "token": OPERATOR, "scope": "operator"},
]
_SOON = pd.Timestamp.now(tz="UTC").floor("h") + pd.Timedelta(days=1)  # events: within a year
WRITES = [
    ("post", "/v1/overrides", {"service": "payments", "replicas": 3, "duration_s": 600, "reason": "t"}),
    ("delete", "/v1/overrides/1", None),
    ("post", "/v1/anomalies/acks", {"unique_id": "payments:deposits", "reason": "known"}),
    ("post", "/v1/events", {"name": "promo", "start": _SOON.isoformat(),
                            "end": (_SOON + pd.Timedelta(hours=2)).isoformat()}),
    ("post", "/v1/retrain", None),
]  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_client(tmp_path):
    stores = []

    def make(**api) -> TestClient:
        settings = Settings(store={"url": f"sqlite:///{tmp_path / 'auth.db'}"}, api=api)
        store = Store(settings.store.url)
        stores.append(store)
        return TestClient(create_app(settings, store))

    yield make
    for store in stores:
        store.close()


def call(client: TestClient, method: str, path: str, body, headers=None):
    return client.request(method.upper(), path, json=body, headers=headers or {})


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_operator_endpoints_refuse_a_missing_or_wrong_token_with_401(make_client, method, path, body):
    client = make_client(tokens=TOKENS)
    for headers in ({}, bearer("not-a-configured-token"), {"Authorization": f"Basic {OPERATOR}"}):
        response = call(client, method, path, body, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert OPERATOR not in response.text


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_operator_endpoints_refuse_a_read_token_with_403(make_client, method, path, body):
    client = make_client(tokens=TOKENS)
    response = call(client, method, path, body, bearer(READ))
    assert response.status_code == 403
    assert "scope 'read'" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_an_operator_token_gets_past_auth(make_client, method, path, body):
    client = make_client(tokens=TOKENS)
    response = call(client, method, path, body, bearer(OPERATOR))
    # what each write answers when it gets through (no override 1 exists to cancel: 404)
    expected = {"/v1/overrides": 201, "/v1/overrides/1": 404, "/v1/anomalies/acks": 201,
                "/v1/events": 201, "/v1/retrain": 202}[path]  # fmt: skip
    assert response.status_code == expected, response.text


def test_with_no_token_configured_nobody_can_write(make_client):
    client = make_client()
    response = call(client, *WRITES[0], bearer(OPERATOR))
    assert response.status_code == 401
    assert "no api.tokens are configured" in response.json()["detail"][0]["msg"]


def test_reads_are_open_by_default(make_client):
    client = make_client(tokens=TOKENS)
    assert client.get("/metrics").status_code == 200
    assert client.get("/v1/scaling/payments").status_code == 503  # no tick yet, but no 401
    assert client.get("/v1/audit").status_code == 200


@pytest.mark.parametrize("path", ["/v1/scaling/payments", "/metrics", "/v1/recommendations",
                                  "/v1/audit", "/v1/overrides", "/v1/retrain"])  # fmt: skip
def test_reads_can_require_a_token(make_client, path):
    client = make_client(tokens=TOKENS, read_requires_token=True)
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer("wrong-token-xxxxxxxxxxxx")).status_code == 401
    for token in (READ, OPERATOR):
        assert client.get(path, headers=bearer(token)).status_code not in (401, 403)
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_openapi_declares_bearer_auth_where_it_applies(make_client):
    spec = make_client(tokens=TOKENS).get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert spec["paths"]["/v1/overrides"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/v1/scaling/{service}"]["get"]
    closed = make_client(tokens=TOKENS, read_requires_token=True).get("/openapi.json").json()
    assert closed["paths"]["/v1/scaling/{service}"]["get"]["security"] == [{"HTTPBearer": []}]


def test_tokens_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(
        "SURGECAST_API__TOKENS", f'[{{"name": "keda", "token": "{READ}", "scope": "read"}}]'
    )
    monkeypatch.setenv("SURGECAST_API__READ_REQUIRES_TOKEN", "true")
    settings = Settings()
    assert settings.api.read_requires_token is True
    assert settings.api.tokens[0].token.get_secret_value() == READ
    assert READ not in repr(settings)  # secrets never print


def test_short_or_duplicate_tokens_are_config_errors(tmp_path):
    from surgecast.config import load_settings

    path = tmp_path / "c.yaml"
    path.write_text("api:\n  tokens:\n    - {name: a, token: short}\n")
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_settings(path)
    path.write_text(
        f"api:\n  tokens:\n    - {{name: a, token: {READ}}}\n    - {{name: a, token: {OPERATOR}}}\n"
    )
    with pytest.raises(ConfigError, match="unique names"):
        load_settings(path)


def test_the_audit_log_names_the_token_never_the_secret(make_client):
    client = make_client(tokens=TOKENS)
    response = call(client, *WRITES[2], bearer(OPERATOR))
    assert response.status_code == 201
    entries = client.get("/v1/audit", params={"kind": "operator"}).json()["items"]
    assert entries and "(by ops)" in entries[-1]["reason"]
    assert OPERATOR not in client.get("/v1/audit").text
