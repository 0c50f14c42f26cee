"""`surgecast run` as a real process: serves, stops on SIGINT with exit 0, resumes without duplicates."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from processes import free_port

pytestmark = pytest.mark.slow

SURGECAST = str(Path(sys.executable).with_name("surgecast"))
TOKEN = "operator-token-0123456789"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes: it runs nothing
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def write_config(tmp_path: Path, api_port: int, dash_port: int) -> Path:
    path = tmp_path / "surgecast.yaml"
    path.write_text(
        f"""
tick_interval_seconds: 5
backfill_days: 2
sources:
  simulator: {{type: simulator, seed: 5, step: 1min}}
store: {{url: "sqlite:///{tmp_path / "run.db"}"}}
api: {{host: 127.0.0.1, port: {api_port}, tokens: [{{name: ops, token: {TOKEN}, scope: operator}}]}}
dashboard: {{enabled: true, host: 127.0.0.1, port: {dash_port}}}
forecast: {{history_days: 2}}
detect: {{history_days: 1}}
models_dir: {tmp_path / "models"}
"""
    )
    return path


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except httpx.HTTPError as exc:
            last_error = exc
        time.sleep(0.5)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what} (last error: {last_error})"
    )


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURGECAST_")}
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [SURGECAST, "run", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=config.parent,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT) -> tuple[int, float]:
    began = time.monotonic()
    proc.send_signal(sig)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return code, time.monotonic() - began


def test_run_serves_stops_cleanly_and_resumes(tmp_path):
    api_port, dash_port = free_port(), free_port()
    config = write_config(tmp_path, api_port, dash_port)
    log = tmp_path / "run.log"
    base = f"http://127.0.0.1:{api_port}"
    proc = start(config, log)
    try:
        recs = wait_for(
            lambda: (r := httpx.get(f"{base}/v1/recommendations", timeout=3).json()) and len(r) == 4 and r,
            timeout=150, what="four recommendations",
        )  # fmt: skip
        assert {r["service"] for r in recs} == {"odds-api", "bet-placement", "account", "payments"}
        assert all(
            {"recommended_replicas", "reason", "valid_until", "stale"} <= set(r) for r in recs
        )
        health = wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{dash_port}/_stcore/health", timeout=3).text,
            timeout=60, what="the dashboard",
        )  # fmt: skip
        assert health == "ok"
        # the ticks run in a child process, so they never hold the API's interpreter
        ready = httpx.get(f"{base}/readyz", timeout=3).json()
        scheduler_pid = ready["process"]["pid"]
        assert ready["process"]["scheduler"] == "child process" and ready["process"]["alive"]
        assert scheduler_pid != proc.pid and alive(scheduler_pid)
        # a retrain requested through the API reaches the scheduler child through the store
        auth = {"Authorization": f"Bearer {TOKEN}"}
        queued = httpx.post(f"{base}/v1/retrain", headers=auth, timeout=5)
        assert queued.status_code == 202 and queued.json()["state"] in ("queued", "running")
        done = wait_for(
            lambda: (r := httpx.get(f"{base}/v1/retrain", timeout=3).json())["state"] == "finished" and r,
            timeout=60, what="the retrain requested through the API",
        )  # fmt: skip
        assert done["requested_by"] == "ops" and len(done["result"]) == 19
    finally:
        code, took = stop(proc)
    assert code == 0, log.read_text()[-3000:]
    assert took < 10
    assert not alive(scheduler_pid)
    # the dashboard child went with it
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{dash_port}/_stcore/health", timeout=2)

    proc = start(config, log)
    try:
        wait_for(
            lambda: httpx.get(f"{base}/readyz", timeout=3).status_code == 200,
            timeout=120,
            what="ready",
        )
        # the resumed process collects new minutes: wait until the series grows past the stop
        uid = "bet-placement:requests_per_second"

        def newest() -> str:
            return httpx.get(f"{base}/v1/series/{uid}/points", timeout=5).json()["points"][-1]["ds"]

        stopped_at = newest()
        wait_for(lambda: newest() > stopped_at, timeout=90, what="points after the restart")
        # the default window is the last 24 h, which spans both runs: one point a minute, no gap
        body = httpx.get(f"{base}/v1/series/{uid}/points", timeout=5).json()
        ds = pd.to_datetime([p["ds"] for p in body["points"]])
        assert len(ds) > 100
        assert set(ds.to_series().diff().dropna()) == {pd.Timedelta("1min")}
    finally:
        code, took = stop(proc, signal.SIGTERM)
    assert code == 0, log.read_text()[-3000:]
    assert took < 10


def test_scheduler_alone_ticks_and_stops_on_sigterm(tmp_path):
    from surgecast.store import Store

    config = write_config(tmp_path, free_port(), free_port())
    log = tmp_path / "scheduler.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SURGECAST_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [SURGECAST, "scheduler", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip
    store = Store(f"sqlite:///{tmp_path / 'run.db'}")
    try:
        wait_for(lambda: store.last_tick() is not None, timeout=150, what="a recorded tick")
        assert len(store.latest_recommendations()) == 4
    finally:
        code, took = stop(proc, signal.SIGTERM)
        store.close()
    assert code == 0, log.read_text()[-3000:]
    assert took < 10


@contextlib.contextmanager
def running_without_dashboard(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """``surgecast run`` (no dashboard) once its API answers: the process, its log and the
    scheduler child's pid; killed afterwards if still running."""
    api_port = free_port()
    config = write_config(tmp_path, api_port, free_port())
    config.write_text(config.read_text().replace("enabled: true", "enabled: false"))
    log = tmp_path / "run.log"
    proc = start(config, log)
    try:
        ready = wait_for(
            lambda: (r := httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=3).json())
            .get("process") and r,
            timeout=60, what="the API",
        )  # fmt: skip
        yield proc, log, int(ready["process"]["pid"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_stops_with_exit_1_when_its_scheduler_dies(tmp_path):
    with running_without_dashboard(tmp_path) as (proc, log, child):
        os.kill(child, signal.SIGKILL)
        code = proc.wait(timeout=30)
    assert code == 1, log.read_text()[-3000:]
    assert "the scheduler process exited" in log.read_text()


def test_a_signal_to_the_whole_group_is_a_clean_stop_even_if_the_scheduler_goes_first(tmp_path):
    # Ctrl-C and systemd signal every process of surgecast run; the scheduler child may exit
    # before the API process has handled its own signal: that is a stop, not a death
    with running_without_dashboard(tmp_path) as (proc, log, child):
        os.kill(child, signal.SIGTERM)
        wait_for(lambda: not _alive(child), timeout=30, what="the scheduler to stop")
        code, _ = stop(proc, signal.SIGTERM)
    assert code == 0, log.read_text()[-3000:]
    assert "the scheduler process exited" not in log.read_text()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
