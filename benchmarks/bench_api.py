"""Load on the autoscaler endpoint ``GET /v1/scaling/{service}`` while ticks run.

    python benchmarks/bench_api.py                     # 30 s at 500 req/s, then wrk for 30 s
    python benchmarks/bench_api.py --ticks run         # the real `surgecast run` process tree
    python benchmarks/bench_api.py --ticks thread      # ticks inside the API process
    python benchmarks/bench_api.py --rate 500 --seconds 30 --no-wrk

The API (uvicorn, one worker) serves a SQLite store whose first tick backfilled 7 days of the
default simulator (19 series, 1-min step); then ticks run back to back for the whole measurement,
on a shared accelerated clock (120x: every tick brings new minutes of data), either

- ``--ticks process`` (default): in their own process, as ``surgecast scheduler`` beside
  ``surgecast api`` (CONVENTIONS.md §5); the API refreshes its in-memory answers from the store;
- ``--ticks run``: ``surgecast run --speed 120 --no-dashboard`` itself, with a tick every second
  (back to back): the API in the main process, the scheduler in its child process;
- ``--ticks thread``: in a thread of the API process (what ``surgecast run`` did before its
  scheduler moved to a child process: the tick holds the GIL);
- ``--ticks none``: not at all (baseline).

Two measurements, both against 127.0.0.1 only:

1. **open loop at a fixed rate** (asyncio, a minimal keep-alive HTTP/1.1 client, 32
   connections): request *i* is due at ``t0 + i / rate`` and its latency runs from then, so a
   stalled server cannot hide queueing (no coordinated omission). Reports the throughput and
   p50/p90/p99/max latency.
2. **wrk** (Debian's ``wrk``, if installed): closed loop, 4 connections, as fast as it goes: the
   throughput ceiling and its latency distribution.

Figures depend on the machine and on what else runs on it: quote them with its size and load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SERVICES = ("odds-api", "bet-placement", "account", "payments")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- the server processes
SPEED = 120.0  # simulated seconds per real second: every tick (>= 0.5 s) sees new minutes of data


def _settings(workdir: Path):  # noqa: ANN202 - imported lazily
    from surgecast.config import Settings

    return Settings(
        backfill_days=7,
        store={"url": f"sqlite:///{workdir / 'bench.db'}"},
        models_dir=str(workdir / "models"),
        forecast={"history_days": 7, "event_history_days": 7},
        detect={"history_days": 3},
    )


def _clock(origin: float, wall0: float):  # noqa: ANN202
    """The same accelerated clock in every process: simulated time from the wall clock."""
    start = pd.Timestamp(origin, unit="s", tz="UTC")

    def clock() -> pd.Timestamp:
        return start + pd.Timedelta(seconds=(time.time() - wall0) * SPEED)

    return clock


def serve(args: argparse.Namespace) -> None:
    """One server process: ``api`` (uvicorn), ``ticker`` (backfill, then ticks back to back) or
    ``both`` (ticks in a thread of the API process, like ``surgecast run``)."""
    import uvicorn

    from surgecast.api import create_app
    from surgecast.scheduler import ServiceState, run_tick
    from surgecast.store import Store
    from surgecast.wiring import build_pipeline

    settings = _settings(args.workdir)
    clock = _clock(args.origin, args.wall0)
    store = Store(settings.store.url)
    state = ServiceState()
    stats_file = args.workdir / "ticks.json"

    def tick_loop(forever: bool) -> None:
        pipeline = build_pipeline(settings, store, clock=clock)
        durations: list[float] = []
        began = time.perf_counter()
        pipeline.tick()  # the backfill
        backfill_s = time.perf_counter() - began
        stats_file.write_text(json.dumps({"backfill_s": backfill_s, "ticks": durations}))
        while forever:
            report = run_tick(pipeline, state)
            if report is not None and report.finished_at is not None:
                durations.append((report.finished_at - report.started_at).total_seconds())
                stats_file.write_text(json.dumps({"backfill_s": backfill_s, "ticks": durations}))

    if args.switch_ms is not None:
        sys.setswitchinterval(args.switch_ms / 1000)
    if args.role == "ticker":
        tick_loop(forever=True)
        return
    if args.role == "both":
        threading.Thread(target=tick_loop, args=(args.ticks == "thread",), daemon=True).start()
    # with state: a tick of this process refreshes the in-memory answers at once
    app = create_app(settings, store, state, clock=clock)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


RUN_CONFIG = """
tick_interval_seconds: 1
backfill_days: 7
store: {{url: "sqlite:///{db}"}}
models_dir: {models}
forecast: {{history_days: 7, event_history_days: 7}}
detect: {{history_days: 3}}
api: {{host: 127.0.0.1, port: {port}}}
dashboard: {{enabled: false}}
"""


def _start_servers(args: argparse.Namespace, workdir: Path, port: int) -> list[subprocess.Popen[bytes]]:
    if args.ticks == "run":
        config = workdir / "surgecast.yaml"
        config.write_text(RUN_CONFIG.format(db=workdir / "bench.db", models=workdir / "models", port=port))
        surgecast = str(Path(sys.executable).with_name("surgecast"))
        command = [surgecast, "run", "--config", str(config), "--speed", str(SPEED), "--no-dashboard"]
        log = (workdir / "run.log").open("ab")
        return [subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)]
    base = [sys.executable, __file__, "--workdir", str(workdir), "--port", str(port),
            "--origin", str(time.time()), "--wall0", str(time.time()), "--ticks", args.ticks]
    if args.switch_ms is not None:
        base += ["--switch-ms", str(args.switch_ms)]
    roles = ["api", "ticker"] if args.ticks == "process" else ["both"]
    return [subprocess.Popen([*base, "--role", role], start_new_session=True) for role in roles]


# ---------------------------------------------------------------- the load generators
async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    """One HTTP/1.1 keep-alive GET on an open connection; returns the status code.

    A raw client: httpx's async client tops out near 150 req/s on this machine while sharing
    the two cores with the server, so it would measure itself rather than the server."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def open_loop(port: int, rate: float, seconds: float, workers: int = 32) -> dict[str, float]:
    """Fixed-rate requests over ``workers`` keep-alive connections; request *i* is due at
    ``t0 + i / rate`` and its latency runs from then, so queueing behind a slow answer counts."""
    total = int(rate * seconds)
    latencies: list[float] = []
    errors = 0
    next_index = 0
    t0 = time.perf_counter() + 0.5

    async def worker() -> None:
        nonlocal errors, next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < total:
                i = next_index
                next_index += 1
                due = t0 + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    path = f"/v1/scaling/{SERVICES[i % len(SERVICES)]}"
                    ok = await asyncio.wait_for(_get(reader, writer, path), 3.0) == 200
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    ok = False
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                latencies.append(time.perf_counter() - due)
                errors += not ok
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    q = statistics.quantiles(latencies, n=1000)
    return {
        "requests": total, "errors": errors, "seconds": elapsed, "throughput": total / elapsed,
        "p50_ms": q[499] * 1e3, "p90_ms": q[899] * 1e3, "p99_ms": q[989] * 1e3,
        "max_ms": latencies[-1] * 1e3,
    }  # fmt: skip


def run_wrk(url: str, seconds: int) -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "wrk not installed (apt-get install -y wrk): skipped"
    result = subprocess.run(
        [wrk, "-t2", "-c4", f"-d{seconds}s", "--latency", f"{url}/v1/scaling/bet-placement"],
        capture_output=True, text=True, timeout=seconds + 30,
    )  # fmt: skip
    return result.stdout + result.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk run")
    parser.add_argument(
        "--ticks", choices=["run", "thread", "process", "none"], default="process",
        help="run: the real `surgecast run` (scheduler child process); thread: ticks in the API "
        "process; process: in their own process (surgecast scheduler + surgecast api); none: no "
        "ticks (baseline)",
    )  # fmt: skip
    parser.add_argument("--switch-ms", type=float, default=None, help="sys.setswitchinterval (ms)")
    for hidden in ("--role", "--workdir", "--port", "--origin", "--wall0"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        args.workdir, args.port = Path(args.workdir), int(args.port)
        args.origin, args.wall0 = float(args.origin), float(args.wall0)
        serve(args)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        servers = _start_servers(args, workdir, port)
        try:
            print(f"servers {[s.pid for s in servers]} (ticks: {args.ticks}): backfilling 7 days ...")
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/v1/scaling/payments", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if any(s.poll() is not None for s in servers):
                    raise SystemExit("a server process died; see its output above")
                time.sleep(0.5)
            time.sleep(3)  # let the background ticks get going
            before = _ticks(workdir)
            print(f"\n== open loop: {args.rate:.0f} req/s for {args.seconds:.0f} s "
                  "(GET /v1/scaling/{service}, 4 services round robin, 32 connections) ==")  # fmt: skip
            result = asyncio.run(open_loop(port, args.rate, args.seconds))
            print(
                f"requests {result['requests']:,}, errors {result['errors']}, "
                f"throughput {result['throughput']:.0f} req/s\n"
                f"latency p50 {result['p50_ms']:.2f} ms, p90 {result['p90_ms']:.2f} ms, "
                f"p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.1f} ms"
            )
            _print_ticks(_ticks(workdir)[len(before):], workdir)
            if not args.no_wrk:
                before = _ticks(workdir)
                print(f"\n== wrk: 2 threads, 4 connections, {args.seconds:.0f} s, as fast as it goes ==")
                print(run_wrk(url, int(args.seconds)).rstrip())
                _print_ticks(_ticks(workdir)[len(before):], workdir)
        finally:
            for server in servers:
                os.killpg(server.pid, signal.SIGTERM)
            for server in servers:
                server.wait(timeout=30)
    return 0


def _ticks(workdir: Path) -> list[float]:
    if not (workdir / "ticks.json").exists() and (workdir / "surgecast.yaml").exists():
        return _store_ticks(workdir)[1:]  # surgecast run: the store's tick log, minus the backfill
    try:
        return list(json.loads((workdir / "ticks.json").read_text())["ticks"])
    except (OSError, ValueError):
        return []


def _store_ticks(workdir: Path) -> list[float]:
    import sqlite3

    try:
        with sqlite3.connect(workdir / "bench.db") as conn:
            rows = conn.execute("SELECT finished_at - started_at FROM tick_runs ORDER BY id").fetchall()
    except sqlite3.Error:
        return []
    return [ns / 1e9 for (ns,) in rows]


def _print_ticks(durations: list[float], workdir: Path) -> None:
    if (workdir / "ticks.json").exists():
        backfill = json.loads((workdir / "ticks.json").read_text())["backfill_s"] if durations else 0
    else:
        backfill = (_store_ticks(workdir) or [0.0])[0]
    if durations:
        print(
            f"ticks finished meanwhile: {len(durations)} (median {statistics.median(durations):.2f} s, "
            f"max {max(durations):.2f} s; first tick with backfill took {backfill:.1f} s)"
        )
    else:
        print("no tick finished meanwhile (a tick was running the whole time)")


if __name__ == "__main__":
    raise SystemExit(main())
