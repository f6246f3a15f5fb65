"""Labelling a corpus with several processes: rows/s and peak memory per process, 1 against 2
processes (``torchrun``), the LLM run and its distilled student, on SST-2 and Friends texts; and
whether N processes write the one-process file row for row.

    python benchmarks/predict_scale.py --rows 20000   # -> benchmarks/results/predict-scale.json

The input files repeat each corpus's texts (SST-2 sentences; Friends utterances with their
dialogue and speaker columns) up to ``--rows``. On this 2-core CPU one process runs 2 torch threads
and each of 2 processes runs 1, so both use the same cores. ``projection`` says what 10 million
texts would take on N such machines, from the measured rows/s (a projection, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from emotune.bench.timing import peak_rss_mb

OUT = Path("benchmarks/results/predict-scale.json")
WORK = Path("runs/predict-scale")
CORPORA = {"sst2": ("sst2", "../shared/datasets/sst"), "friends": ("friends", "../shared/datasets/friends")}
TEN_MILLION = 10_000_000


def input_file(name: str, rows: int) -> Path:
    """``rows`` texts of the corpus (repeated as needed) as JSONL with dialogue and speaker."""
    from emotune.config import DataConfig
    from emotune.data import load_data

    path = WORK / f"{name}-{rows}.jsonl"
    if path.is_file():
        return path
    dataset, data_dir = CORPORA[name]
    data = load_data(DataConfig(dataset=dataset, data_dir=data_dir, context_turns=0), 42)
    texts = [e for split in ("train", "dev", "test") for e in data.splits.get(split, [])]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            e = texts[i % len(texts)]
            dialogue = e.uid.rsplit(":", 1)[0] if e.uid else str(i)
            fh.write(
                json.dumps({"text": e.text, "dialogue": f"{i // len(texts)}-{dialogue}", "speaker": e.speaker}) + "\n"
            )
    return path


def worker(argv: list[str], report: Path) -> None:
    """Runs ``emotune predict`` in this process, then records its wall time and peak RSS."""
    from emotune.cli import main as emotune_main

    started = time.perf_counter()
    code = emotune_main(argv)
    rank = int(os.environ.get("RANK", "0"))
    report.with_name(f"{report.stem}-rank{rank}.json").write_text(
        json.dumps({"rank": rank, "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(), "exit": code})
    )
    sys.exit(code)


def launch(run: Path, source: Path, target: Path, processes: int, dialogue: bool) -> dict[str, Any]:
    """One prediction job; its wall time, rows/s, merge time and each process's peak RSS."""
    report = target.with_suffix(".report")
    for old in target.parent.glob(f"{report.stem}-rank*.json"):
        old.unlink()
    target.unlink(missing_ok=True)
    argv = ["predict", "--run", str(run), "--input", str(source), "--output", str(target)]
    argv += ["--dialogue-column", "dialogue", "--speaker-column", "speaker"] if dialogue else []
    me = [sys.executable, __file__, "--worker", str(report), "--"]
    if processes > 1:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
        # torchrun would read --run as its own --run-path: "--" ends its options.
        cmd += ["--master_port", str(port), __file__, "--", "--worker", str(report), "--", *argv]
    else:
        cmd = [*me, *argv]
    env = os.environ | {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // processes)), "PYTHONPATH": "src"}
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith('{"output"')))
    reports = [json.loads(p.read_text()) for p in sorted(target.parent.glob(f"{report.stem}-rank*.json"))]
    return {
        "processes": processes,
        "rows": result["rows"],
        "wall_seconds": round(wall, 2),
        "rows_per_second": round(result["rows"] / wall, 2),
        "rows_per_second_per_process": round(result["rows"] / wall / processes, 2),
        "merge_seconds": result.get("merge_seconds"),
        "merge_share_of_wall": round((result.get("merge_seconds") or 0) / wall, 5),
        "peak_rss_mb_per_process": [round(r["peak_rss_mb"]) for r in reports],
    }


def same_rows(a: Path, b: Path) -> dict[str, Any]:
    """Whether two prediction files agree row for row: labels equal, largest probability gap."""
    left = [json.loads(x) for x in a.read_text().splitlines()]
    right = [json.loads(x) for x in b.read_text().splitlines()]
    gaps = [
        abs(x["scores"][k] - y["scores"][k])
        for x, y in zip(left, right, strict=True)
        if "scores" in x
        for k in x["scores"]
    ]
    return {
        "rows": len(left),
        "same_order": [x["row"] for x in left] == [y["row"] for y in right],
        "labels_equal": all(x.get("label") == y.get("label") for x, y in zip(left, right, strict=True)),
        "max_probability_difference": max(gaps, default=0.0),
    }


def projection(rows_per_second_per_process: float, processes_per_machine: int) -> dict[str, Any]:
    per_machine = rows_per_second_per_process * processes_per_machine
    return {
        "basis": f"{rows_per_second_per_process} rows/s per process x {processes_per_machine} processes per machine "
        "(measured); hours for 10 million texts on N such machines (projected)",
        "hours": {str(n): round(TEN_MILLION / (per_machine * n) / 3600, 1) for n in (1, 10, 100)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--runs", default="sst2=runs/explain/sst2,friends=runs/explain/friends")
    parser.add_argument("--student", default="runs/explain/sst2-student", help="a distilled run (SST-2)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.worker:
        worker(rest[1:] if rest[:1] == ["--"] else rest, Path(args.worker))
        return
    from emotune.bench.record import header

    runs = dict(item.split("=", 1) for item in args.runs.split(","))
    rows: list[dict[str, Any]] = []
    checks = {}
    for name, run in [*runs.items(), ("sst2", args.student)]:
        source = input_file(name, args.rows)
        model = "student" if run == args.student else "llm"
        outputs = {}
        for processes in (1, 2):
            target = WORK / f"{name}-{model}-{processes}.jsonl"
            rows.append(
                {"corpus": name, "model": model, "run": run}
                | launch(Path(run), source, target, processes, name == "friends")
            )
            outputs[processes] = target
            print(json.dumps(rows[-1]), flush=True)
        checks[f"{name}/{model}"] = same_rows(outputs[2], outputs[1])
    llm_one = [r for r in rows if r["model"] == "llm" and r["processes"] == 1]
    result = header("python " + " ".join(sys.argv)) | {
        "rows": rows,
        "two_processes_equal_one": checks,
        "projection_llm_cpu": projection(min(r["rows_per_second_per_process"] for r in llm_one), 1),
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
