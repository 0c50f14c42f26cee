"""A real Prometheus on 127.0.0.1 with simulator history, scraping the live simulator exporter.

Used by ``test_prometheus_integration.py`` and ``benchmarks/bench_collect.py``: history is
backfilled with ``promtool`` (through ``surgecast simulate backfill``), Prometheus (the Debian
binary) gets its own data directory and the ``deploy/prometheus.yml`` scrape config pointed at
an exporter on a free port. Processes are stopped by PID; nothing listens beyond loopback.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml
from processes import free_port, http_ready, poll, stop_process

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found on PATH: install the Debian package 'prometheus' "
            "(apt-get install -y prometheus; `make test` runs scripts/system-deps.sh)"
        )
    return found


def prometheus_config(target: str, scrape_interval: str | None = None) -> str:
    """``deploy/prometheus.yml`` scraping ``target``, with its rule file at an absolute path."""
    config = yaml.safe_load((REPO / "deploy/prometheus.yml").read_text(encoding="utf-8"))
    config["rule_files"] = [str(REPO / "deploy" / f) for f in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            static["targets"] = [target]
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    return yaml.safe_dump(config, sort_keys=False)


class Prometheus:
    """The Debian ``prometheus`` on 127.0.0.1:``port`` with data in ``data``."""

    def __init__(self, root: Path, data: Path, config_text: str, port: int | None = None) -> None:
        self.root, self.data = root, data
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = root / "prometheus.yml"
        self.config.write_text(config_text, encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.root / f"prometheus-{self.starts}.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [binary("prometheus"), f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.data}",
                 "--storage.tsdb.retention.time=30d",  # the default 15d would drop the backfill
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            poll("prometheus /-/ready", self._ready, READY_TIMEOUT_S)
        except (TimeoutError, RuntimeError):
            self.stop()
            raise RuntimeError(f"prometheus did not become ready; log:\n{log.read_text()[-3000:]}") from None

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
        return http_ready(f"{self.url}/-/ready")

    def kill(self) -> None:
        """SIGKILL, as a crash: no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        stop_process(self.proc, timeout_s=30)
        self.proc = None

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10.0)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def query_range(self, promql: str, start: float, end: float, step: int) -> httpx.Response:
        return httpx.get(
            f"{self.url}/api/v1/query_range",
            params={"query": promql, "start": start, "end": end, "step": step},
            timeout=30.0,
        )
