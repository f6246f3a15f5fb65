"""How the benchmark scripts time things: wall seconds of a command as a user runs it, finished
GPU work, a matmul's achieved FLOP/s (the peak a model's MFU is read against) and peak memory."""

from __future__ import annotations

import resource
import shlex
import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def wall_seconds(command: str | Sequence[str], runs: int = 3, warmup: int = 0) -> tuple[list[float], str]:
    """Wall seconds of each of ``runs`` runs of ``command`` (a fresh process each time, as a user
    runs it; ``warmup`` untimed runs first, e.g. to fill a cache), and the last run's output.

    Raises:
        subprocess.CalledProcessError: If a run fails: a time of a failed command means nothing.
    """
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    for _ in range(warmup):
        subprocess.run(argv, capture_output=True, check=True)
    seconds, output = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        seconds.append(round(time.perf_counter() - started, 2))
    return seconds, output


def sync(device: torch.device) -> None:
    """Waits for queued GPU work, so a timer reads finished work."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: torch.device) -> None:
    """Starts a new GPU peak-memory reading (after the queued work)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 2048, reps: int = 5) -> float:
    """Achieved FLOP/s of an n x n x n product on random data: the best of ``reps`` after a warm-up."""
    import torch

    a, b = (torch.randn(n, n, dtype=dtype, device=device) for _ in range(2))
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
