"""Configuration: embedded defaults, YAML, environment overrides, and errors that name the key."""

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from surgecast.cli import app
from surgecast.config import PrometheusSource, Settings, load_settings
from surgecast.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("SURGECAST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no ./surgecast.yaml unless a test writes one


def write(tmp_path, text, name="conf.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_embedded_defaults_are_the_simulator_sqlite_and_loopback():
    s = load_settings()
    assert list(s.sources) == ["simulator"]
    assert s.store.url == "sqlite:///./var/surgecast.db"
    assert (s.api.host, s.api.port) == ("127.0.0.1", 8000)
    assert (s.dashboard.host, s.dashboard.port) == ("127.0.0.1", 8501)
    assert s.tick_interval_seconds == 60
    assert set(s.services) == {"odds-api", "bet-placement", "account", "payments"}


def test_committed_example_config_is_valid():
    s = load_settings(REPO / "surgecast.yaml")
    assert "bet-placement" in s.services


def test_the_example_configs_commented_tokens_are_valid_once_uncommented(tmp_path):
    text = (REPO / "surgecast.yaml").read_text()
    text = text.replace("  # tokens:", "  tokens:").replace("  #   - {name:", "    - {name:")
    path = tmp_path / "surgecast.yaml"
    path.write_text(text)
    tokens = load_settings(path).api.tokens
    assert [(t.name, t.scope) for t in tokens] == [("keda", "read"), ("sre", "operator")]


def test_misspelt_key_names_the_file_the_key_and_the_allowed_keys(tmp_path):
    path = write(tmp_path, "services:\n  bet-placement:\n    capacity_per_replca: 50\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert str(path) in text
    assert "unknown key 'services.bet-placement.capacity_per_replca'" in text
    assert "capacity_per_replica" in text  # what was expected


def test_bad_value_names_key_and_expectation(tmp_path):
    path = write(tmp_path, "tick_interval_seconds: soon\n")
    with pytest.raises(
        ConfigError, match=r"key 'tick_interval_seconds': Input should be a valid integer.*'soon'"
    ):
        load_settings(path)


def test_min_above_max_replicas_is_rejected(tmp_path):
    path = write(
        tmp_path,
        "services:\n  x:\n    capacity_per_replica: 10\n    min_replicas: 9\n    max_replicas: 3\n",
    )
    with pytest.raises(ConfigError, match=r"min_replicas \(9\) is above max_replicas \(3\)"):
        load_settings(path)


def test_series_must_name_a_configured_source(tmp_path):
    path = write(tmp_path, "series:\n  - service: a\n    metric: b\n    source: prom\n")
    with pytest.raises(ConfigError, match="names source 'prom'"):
        load_settings(path)


def test_prometheus_series_need_promql(tmp_path):
    path = write(
        tmp_path,
        "sources:\n  prom:\n    type: prometheus\n    url: http://127.0.0.1:9090\n"
        "series:\n  - service: a\n    metric: b\n    source: prom\n",
    )
    with pytest.raises(ConfigError, match="has no 'promql'"):
        load_settings(path)


def test_unknown_source_type_is_rejected(tmp_path):
    path = write(tmp_path, "sources:\n  x:\n    type: graphite\n")
    with pytest.raises(ConfigError, match="sources.x"):
        load_settings(path)


def test_prometheus_source_parses(tmp_path):
    path = write(
        tmp_path,
        "sources:\n  prom:\n    type: prometheus\n    url: http://127.0.0.1:9090\n"
        "series:\n  - service: a\n    metric: b\n    source: prom\n    promql: sum(rate(x[1m]))\n",
    )
    s = load_settings(path)
    assert isinstance(s.sources["prom"], PrometheusSource)
    assert s.series[0].query == "sum(rate(x[1m]))"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "store:\n  url: sqlite:///from-file.db\ntick_interval_seconds: 30\n")
    monkeypatch.setenv("SURGECAST_STORE__URL", "sqlite:///from-env.db")
    s = load_settings(path)
    assert s.store.url == "sqlite:///from-env.db"
    assert s.tick_interval_seconds == 30


def test_missing_file_and_bad_yaml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(write(tmp_path, "- 1\n- 2\n"))


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        s.tick_interval_seconds = 5  # type: ignore[misc]


def test_cli_config_check_exits_nonzero_naming_the_key(tmp_path):
    path = write(tmp_path, "servics: {}\n", name="bad.yaml")
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert "unknown key 'servics'" in result.output


def test_cli_config_check_accepts_the_example(tmp_path):
    result = CliRunner().invoke(app, ["config", "check", str(REPO / "surgecast.yaml")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_console_script_is_installed_and_explains_itself():
    exe = Path(sys.executable).with_name("surgecast")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("run", "api", "scheduler", "tick", "simulate", "config"):
        assert command in result.stdout


def test_a_series_listed_twice_is_rejected(tmp_path):
    path = write(
        tmp_path,
        "series:\n  - {service: payments, metric: requests_per_second}\n"
        "  - {service: payments, metric: requests_per_second}\n",
    )
    with pytest.raises(ConfigError, match="'payments:requests_per_second' is listed twice"):
        load_settings(path)


def test_bad_step_and_step_longer_than_staleness_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match="'often' is not a duration"):
        load_settings(write(tmp_path, "sources:\n  simulator: {type: simulator, step: often}\n"))
    with pytest.raises(ConfigError, match="not shorter than stale_after_seconds"):
        load_settings(write(tmp_path, "sources:\n  simulator: {type: simulator, step: 10min}\n"))
