"""Prediction speed and accuracy: the torch run vs its ONNX exports (fp32, dynamic int8), SST-2 test.

    python benchmarks/onnx_speed.py --run runs/bench-sst2/lora --data-dir ../shared/datasets/sst
        -> benchmarks/results/onnx.json

Each backend is loaded and timed in its own process (load time, examples/s over the test split,
accuracy, peak RSS); the ONNX workers block torch imports, as in an environment without torch.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['peft'] = None; sys.modules['accelerate'] = None\n"


def peak_rss_mb() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not survive exec from
    a larger parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return -1


def worker(folder: str, data_dir: str, limit: int, batch: int) -> dict[str, Any]:
    """Loads ``folder`` with Predictor and times prediction over the SST-2 test split."""
    from emotune.config import DataConfig
    from emotune.data import load_data
    from emotune.inference.predict import Predictor

    test = load_data(DataConfig(dataset="sst2", data_dir=data_dir), splits={"test"}).split("test")[:limit]
    start = time.perf_counter()
    predictor = Predictor.load(folder, batch_size=batch)
    load_s = time.perf_counter() - start
    texts = [e.text for e in test]
    predictor.predict(texts[:16])  # warm-up
    start = time.perf_counter()
    preds = predictor.predict(texts)
    seconds = time.perf_counter() - start
    names = predictor.labels
    correct = sum(p.label == names[int(e.label)] for p, e in zip(preds, test, strict=True))  # type: ignore[arg-type]
    return {
        "load_seconds": round(load_s, 2),
        "examples": len(texts),
        "examples_per_second": round(len(texts) / seconds, 2),
        "accuracy": correct / len(texts),
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": "torch" in [m for m, v in sys.modules.items() if v is not None],
    }


def measure(folder: Path, args: argparse.Namespace, block_torch: bool) -> dict[str, Any]:
    code = (BLOCK_TORCH if block_torch else "") + (
        "import json, sys; sys.path.insert(0, 'benchmarks'); from onnx_speed import worker\n"
        f"print(json.dumps(worker({str(folder)!r}, {args.data_dir!r}, {args.examples}, {args.batch})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"worker for {folder} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", required=True)
    parser.add_argument("--data-dir", default="../shared/datasets/sst")
    parser.add_argument("--examples", type=int, default=1821)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/onnx.json")
    args = parser.parse_args()
    from emotune.inference.export import export

    work = Path(tempfile.mkdtemp(prefix="emotune-onnx-"))
    exports = {}
    for name, int8 in (("onnx-fp32", False), ("onnx-int8", True)):
        start = time.perf_counter()
        export(Path(args.run), "onnx", work / name, quantize=int8)
        size = sum(p.stat().st_size for p in (work / name).iterdir()) // 2**20
        exports[name] = {"export_seconds": round(time.perf_counter() - start, 1), "folder_mb": size}
    results = {"torch": measure(Path(args.run), args, block_torch=False)}
    for name in exports:
        results[name] = measure(work / name, args, block_torch=True) | exports[name]
    base = results["torch"]
    for name in exports:
        results[name]["speedup_vs_torch"] = round(results[name]["examples_per_second"] / base["examples_per_second"], 2)
        results[name]["accuracy_delta_points"] = round(100 * (results[name]["accuracy"] - base["accuracy"]), 2)
    out = {
        "date": datetime.date.today().isoformat(),
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "run": args.run,
        "batch": args.batch,
        "results": results,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
