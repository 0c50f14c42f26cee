"""The OpenAPI contract, fuzzed: schemathesis (examples, coverage, fuzzing and stateful phases)
against the live app served by uvicorn on 127.0.0.1, over a store filled by a real tick.

It must find no server error and no response that breaks the schema (status codes, content
types, bodies, headers). Bounded (few examples per operation, fixed seed) so it runs in about a
minute on two cores. Relaxations, set in the config file written below: a request the schema
allows may still get a 422 when it breaks a rule the schema cannot express (``start`` before
``end``, a range of at most 31 days, an override ending in the future), and a 410 for an
override the stateful phase has cancelled (DELETE) before reading it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from api_world import OPERATOR, small_settings

from dashboard.demo import ApiServer
from surgecast.api import create_app
from surgecast.store import Store
from surgecast.wiring import build_pipeline, build_sources

CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "410", "422"]
"""


@pytest.fixture(scope="module")
def live_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    settings = small_settings(tmp, "fuzz.db", api={
        "tokens": [{"name": "fuzzer", "token": OPERATOR, "scope": "operator"}]})
    store = Store(settings.store.url)
    build_pipeline(settings, store).tick(pd.Timestamp.now(tz="UTC").floor("5min"))

    def retrain() -> dict[str, str]:  # the real job backtests every series: too slow to fuzz
        return {"payments:requests_per_second": "seasonal_naive"}

    app = create_app(settings, store, calendar=build_sources(settings).events, retrain=retrain)
    server = ApiServer(app).start()  # raises if /healthz does not answer
    yield server.url
    server.stop()
    store.close()


def test_schemathesis_finds_no_server_error_or_schema_violation(live_url, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    cli = Path(sys.executable).with_name("schemathesis")
    command = [
        str(cli), "--config-file", str(config), "--no-color", "run", f"{live_url}/openapi.json",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", "15", "--seed", "7", "--workers", "1",
        "--generation-database", "none", "--request-timeout", "10",
        "--header", f"Authorization: Bearer {OPERATOR}",
        "--report", "junit", "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    # run in tmp_path: schemathesis keeps a crash cache in ./.schemathesis
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    print(result.stdout[-4000:])  # the summary, shown with -s or -rP
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
