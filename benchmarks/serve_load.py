"""Load test of ``emotune serve`` on loopback: throughput and p50/p95/p99 latency at 1, 8 and 32
concurrent clients, each request one sentence. Bounded in requests and time; loopback only.

    python benchmarks/serve_load.py --run runs/bench-sst2/lora --requests 96

Starts the server as a subprocess (like a deployment would), waits for ``/readyz`` and writes
``benchmarks/results/serve-load.json``.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from emotune.bench.record import header

SENTENCES = [
    "what a wonderful film , full of warmth and wit",
    "a dull , lifeless mess that goes nowhere",
    "i laughed all the way through",
    "the plot is thin and the acting is worse",
    "an honest , moving portrait of a family",
    "it is neither funny nor interesting",
    "a small gem that deserves a bigger audience",
    "two hours i will never get back",
]


def start_server(run: str, port: int, max_batch: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from emotune.cli import main; raise SystemExit(main())", "serve"]
    cmd += ["--run", run, "--port", str(port), "--max-batch", str(max_batch)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited during startup")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit("server not ready in time")


def level(url: str, clients: int, requests: int, time_limit: float) -> dict[str, float]:
    """Runs ``requests`` one-sentence requests from ``clients`` threads; latency in ms."""
    latencies: list[float] = []
    stop_at = time.monotonic() + time_limit

    def one(i: int) -> None:
        if time.monotonic() > stop_at:
            return
        body = {"texts": [SENTENCES[i % len(SENTENCES)]]}
        start = time.perf_counter()
        reply = httpx.post(f"{url}/v1/predict", json=body, timeout=120)
        reply.raise_for_status()
        latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients,
        "requests": len(latencies),
        "seconds": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 2),
        "p50_ms": round(q[49], 1),
        "p95_ms": round(q[94], 1),
        "p99_ms": round(q[98], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="runs/bench-sst2/lora")
    parser.add_argument("--requests", type=int, default=96, help="requests per concurrency level")
    parser.add_argument("--time-limit", type=float, default=180, help="seconds per level at most")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--out", default="benchmarks/results/serve-load.json")
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args.run, port, args.max_batch)
    try:
        wait_ready(url, proc)
        level(url, 1, 4, 60)  # warm-up
        levels = [level(url, c, args.requests, args.time_limit) for c in (1, 8, 32)]
        batches = httpx.get(f"{url}/v1/model").json()["batches_run"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result = {
        **header("python " + " ".join(sys.argv)),
        "network": "loopback",
        "run": args.run,
        "levels": levels,
        "forward_passes": batches,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for row in levels:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
