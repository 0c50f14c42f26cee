"""The KEDA manifests under deploy/kubernetes/ and in the README's "Connect your autoscaler":
valid YAML, only fields KEDA documents (keda-docs 2.17 metrics-api and ScaledObject spec), auth
wired end to end, and a valueLocation that finds a number in the app's real answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from api_world import small_settings
from fastapi.testclient import TestClient
from test_api_scaling import keda_value

from surgecast.api import create_app
from surgecast.store import Store
from surgecast.wiring import build_pipeline

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))
NOW = pd.Timestamp.now(tz="UTC").floor("5min")

SCALED_OBJECT_SPEC = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod",
    "idleReplicaCount", "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
}  # fmt: skip
TRIGGER_KEYS = {"type", "metadata", "name", "metricType", "useCachedMetrics", "authenticationRef"}
METRICS_API_METADATA = {
    "url", "format", "valueLocation", "targetValue", "activationTargetValue", "unsafeSsl",
    "aggregateFromKubeServiceEndpoints", "aggregationType", "authMode", "method", "keyParamName",
}  # fmt: skip
AUTH_PARAMETERS = {"apiKey": {"apiKey"}, "basic": {"username"}, "tls": {"ca", "cert"},
                   "bearer": {"token"}}  # fmt: skip


def readme_documents() -> list[dict[str, Any]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Connect your autoscaler", 1)
    assert len(section) == 2, "README.md lacks the section 'Connect your autoscaler'"
    body = section[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", body, flags=re.S)
    return [d for b in blocks for d in yaml.safe_load_all(b) if d]


def file_documents() -> list[dict[str, Any]]:
    return [d for f in MANIFESTS for d in yaml.safe_load_all(f.read_text()) if d]


def check_keda(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate ScaledObjects against what KEDA documents; return their metrics-api triggers."""
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in documents:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    assert by_kind.get("ScaledObject"), "no ScaledObject"
    triggers = []
    for so in by_kind["ScaledObject"].values():
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        spec = so["spec"]
        assert set(spec) <= SCALED_OBJECT_SPEC, set(spec) - SCALED_OBJECT_SPEC
        assert spec["scaleTargetRef"]["name"]
        assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        if "fallback" in spec:
            assert {"failureThreshold", "replicas"} <= set(spec["fallback"])
        for trig in spec["triggers"]:
            assert set(trig) <= TRIGGER_KEYS, set(trig) - TRIGGER_KEYS
            assert trig["type"] == "metrics-api"
            meta = trig["metadata"]
            assert set(meta) <= METRICS_API_METADATA, set(meta) - METRICS_API_METADATA
            assert all(isinstance(v, str) for v in meta.values()), "metadata values are strings"
            assert {"url", "valueLocation", "targetValue"} <= set(meta)
            float(meta["targetValue"])
            assert meta.get("format", "json") == "json"
            if "fallback" in spec:  # fallback only works with AverageValue (the default)
                assert trig.get("metricType", "AverageValue") == "AverageValue"
            if "authMode" in meta:
                auth = by_kind["TriggerAuthentication"][trig["authenticationRef"]["name"]]
                assert auth["apiVersion"] == "keda.sh/v1alpha1"
                assert auth["metadata"]["namespace"] == so["metadata"]["namespace"]
                refs = auth["spec"]["secretTargetRef"]
                for mode in meta["authMode"].split(","):
                    assert AUTH_PARAMETERS[mode] <= {r["parameter"] for r in refs}
                for ref in refs:
                    secret = by_kind["Secret"][ref["name"]]
                    assert ref["key"] in {**secret.get("data", {}), **secret.get("stringData", {})}
            triggers.append(trig)
    return triggers


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("keda")
    settings = small_settings(tmp, "keda.db")
    store = Store(settings.store.url)
    build_pipeline(settings, store).tick(NOW)
    yield TestClient(create_app(settings, store, clock=lambda: NOW + pd.Timedelta(seconds=30)))
    store.close()


def test_the_manifests_exist_for_both_choices():
    names = {f.name for f in MANIFESTS}
    assert {"triggerauthentication.yaml", "scaledobject-forecast-rps.yaml",
            "scaledobject-recommended-replicas.yaml"} <= names  # fmt: skip
    locations = {t["metadata"]["valueLocation"] for t in check_keda(file_documents())}
    assert locations == {"forecast_rps", "recommended_replicas"}


@pytest.mark.parametrize("source", ["files", "readme"])
def test_value_locations_find_numbers_in_the_real_answer(client, source):
    documents = file_documents() if source == "files" else readme_documents()
    for trig in check_keda(documents):
        meta = trig["metadata"]
        path = "/" + meta["url"].split("/", 3)[3]
        response = client.get(path)
        assert response.status_code == 200, path
        value = keda_value(response.content, meta["valueLocation"])
        if meta["valueLocation"] == "forecast_rps":
            # targetValue is the planned load per replica the endpoint reports
            assert float(meta["targetValue"]) == response.json()["capacity_per_replica"]
        else:
            assert meta["valueLocation"] == "recommended_replicas"
            assert float(meta["targetValue"]) == 1.0
            assert value == response.json()["recommended_replicas"]
