"""Tables of the trust and scale-out benchmarks, from their result files (used by
``results.py``'s templates). A result file not committed yet gives one line naming the command
that writes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
NAMES = {
    "meld": "MELD",
    "mastodon": "Mastodon",
    "mosi2": "MOSI-2",
    "mosi3": "MOSI-3",
    "friends": "Friends",
    "sst2": "SST-2",
    "sst5": "SST-5",
    "smp2020-ewect": "SMP2020-EWECT",
    "cped-m3ed7": "CPED (7)",
    "emobank": "EmoBank (2)",
    "chnsenticorp": "ChnSentiCorp",
}


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


def _missing(path: Path, command: str) -> str | None:
    if path.is_file():
        return None
    return f"No result is committed yet: `{command}` writes `{path.relative_to(RESULTS.parent.parent)}`.\n"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _about(h: dict[str, Any]) -> str:
    return f"{h['date']}, {h['machine']}, commit `{h['commit']}`, `{h['command']}`"


def label_cost_table() -> str:
    """What a label set costs at call time (``benchmarks/label_cost.py``)."""
    path = RESULTS / "label-cost.json"
    missing = _missing(path, "python benchmarks/label_cost.py")
    if missing:
        return missing
    s = _read(path)
    lines = [
        f"{s['date']}, {s['machine']}, commit `{s['commit']}`, `{s['command']}`; one text, each cell a fresh process:",
        "",
        "| scored with | label names | labels | scoring | predict one text, s (after load) | peak memory, MB |",
        "|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        family = r.get("family", "words")
        scoring = r.get("scoring", "")
        if "refused" in r:
            scoring = f"refused ({r['refused']}); measured past the bound: {scoring}"
        if scoring.endswith("all"):
            scoring += f", {r['words_of_several_tokens']} words of several tokens"
        cost = f"{r['predict_seconds']} | {r['peak_rss_mb']}" if "predict_seconds" in r else " | "
        lines.append(f"| {r['model']} | {family} | {r['labels']} | {scoring} | {cost} |")
    return "\n".join(lines) + "\n"


def targets_table(path: Path, command: str) -> str:
    missing = _missing(path, command)
    if missing:
        return missing
    rows = ["| corpus | target | value | met |", "|---|---|---|---|"]
    rows += [
        f"| {NAMES.get(t['corpus'], t['corpus'])} | {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |"
        for t in _read(path)["targets"]
    ]
    return "\n".join(rows) + "\n"


def calibration_table() -> str:
    path = RESULTS / "calibration.json"
    missing = _missing(path, "python benchmarks/calibration.py")
    if missing:
        return missing
    s = _read(path)
    lines = [
        f"From {s['sources']} ({s['date']}, `{s['command']}`; each cell names its machine).",
        "",
        "| corpus | recipe | accuracy | temperature | ECE before | ECE after | accuracy at 80% coverage |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        lines.append(
            f"| {NAMES.get(r['corpus'], r['corpus'])} | {r['recipe']} | {_pct(r['accuracy'])} | {r['temperature']:.2f} "
            f"| {_pct(r['ece_before'])} | {_pct(r['ece'])} | {_pct(r['accuracy_at_80_coverage'])} |"
        )
    return "\n".join(lines) + "\n"


def vector_scaling_table() -> str:
    path = RESULTS / "calibration-vector.json"
    missing = _missing(path, "python benchmarks/calibration.py --runs RUN ...")
    if missing:
        return missing
    s = _read(path)
    lines = [
        f"{s['date']}, {s['machine']}, commit `{s['commit']}`, `python benchmarks/calibration.py --runs ...` "
        "(the calibration step re-run on each run's kept weights; scored on its evaluation split):",
        "",
        "| run | dev texts (fewest of a label) | kept | ECE: temperature alone | ECE: calibration step "
        "| ECE of perfect calibration: mean / 95th pct. | accuracy: temperature / step "
        "| macro-F1: temperature / step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        t, c = r["temperature_alone"], r["calibration_step"]
        floor = f"{_pct(c['ece_floor'])} / {_pct(c['ece_floor_p95'])}" if "ece_floor" in c else "—"
        lines.append(
            f"| `{Path(r['run']).name}` | {r['dev_texts']} ({r['fewest_dev_texts_of_a_label']}) | {r['chosen']} "
            f"| {_pct(t['ece'])} | {_pct(c['ece'])} | {floor} | {_pct(t['accuracy'])} / {_pct(c['accuracy'])} "
            f"| {_pct(t['macro_f1'])} / {_pct(c['macro_f1'])} |"
        )
    met = s["targets"]
    lines += ["", f"ECE at most 3% after the calibration step: {sum(m['met'] for m in met)} of {len(met)} runs."]
    if all("within_floor" in m for m in met):
        lines.append(
            f"ECE within the 95th percentile of a perfectly calibrated model's on the same texts: "
            f"{sum(m['within_floor'] for m in met)} of {len(met)}."
        )
    return "\n".join(lines) + "\n"


def explain_table() -> str:
    path = RESULTS / "explain" / "summary.json"
    missing = _missing(path, "python benchmarks/explain_faithfulness.py")
    if missing:
        return missing
    s = _read(path)
    lines = [
        "| corpus | texts | comprehensiveness: occlusion / IG / random | sufficiency: occlusion / IG / random "
        "| s per text: occlusion / IG |",
        "|---|---|---|---|---|",
    ]
    abouts = set()
    for name, c in s["cells"].items():
        if "occlusion" not in c:
            continue
        comp = " / ".join(f"{c[m]['comprehensiveness']:.3f}" for m in ("occlusion", "ig", "random"))
        suff = " / ".join(f"{c[m]['sufficiency']:.3f}" for m in ("occlusion", "ig", "random"))
        speed = f"{c['seconds_per_text']['occlusion']:.2f} / {c['seconds_per_text']['ig']:.2f}"
        lines.append(f"| {NAMES.get(name, name)} | {c['texts']} | {comp} | {suff} | {speed} |")
        abouts.add(_about(c["header"]))
    lines.append("")
    lines.append("AOPC over the top 10, 20 and 50% of words. " + "; ".join(sorted(abouts)) + ".")
    timing = s["cells"].get("sst2", {}).get("explain_latency")
    if timing:
        lines += [
            "",
            f"`Predictor.explain` of one SST-2 sentence ({timing['mean_words']:.0f} words on average), occlusion, "
            f"after load: median {timing['median_seconds']:.2f} s, slowest {timing['max_seconds']:.2f} s over "
            f"{timing['texts']} sentences ({_about(timing['header'])}).",
        ]
    return "\n".join(lines) + "\n"


def predict_scale_table() -> str:
    path = RESULTS / "predict-scale.json"
    missing = _missing(path, "python benchmarks/predict_scale.py")
    if missing:
        return missing
    s = _read(path)
    lines = [
        f"{s['date']}, {s['machine']}, commit `{s['commit']}`, `{s['command']}`:",
        "",
        "| texts | model | processes | rows/s | rows/s per process | peak RSS per process, MB "
        "| merge, % of wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        rss = ", ".join(str(m) for m in r["peak_rss_mb_per_process"])
        merge = "–" if r["processes"] == 1 else f"{100 * r['merge_share_of_wall']:.2f}"
        lines.append(
            f"| {NAMES.get(r['corpus'], r['corpus'])} | {r['model']} | {r['processes']} | {r['rows_per_second']} "
            f"| {r['rows_per_second_per_process']} | {rss} | {merge} |"
        )
    checks = s["two_processes_equal_one"]
    same = all(c["labels_equal"] and c["same_order"] for c in checks.values())
    gap = max(c["max_probability_difference"] for c in checks.values())
    lines += [
        "",
        f"Two processes against one, every file: {'the same labels in the same order' if same else '**rows differ**'}, "
        f"probabilities {'identical' if gap == 0 else f'within {gap:.1e}'}.",
    ]
    p = s["projection_llm_cpu"]
    hours = ", ".join(f"{n} machine{'s' if n != '1' else ''}: {h} h" for n, h in p["hours"].items())
    lines += ["", f"Projection for 10 million texts on this CPU kind ({p['basis']}): {hours}."]
    return "\n".join(lines) + "\n"


def exports_table() -> str:
    path = RESULTS / "exports.json"
    missing = _missing(path, "python benchmarks/exports.py")
    if missing:
        return missing
    s = _read(path)
    lines = [
        f"{s['date']}, {s['machine']}, commit `{s['commit']}`, `{s['command']}`; {s['texts']} SST-2 test "
        f"sentences, batch {s['batch']}, each row a fresh process{_seq_cls_bias(s)}:",
        "",
        "| loaded as | precision | export, s | folder, MB | load, s | examples/s | peak memory, MB | accuracy "
        "| same label as merged fp32 | largest probability gap | torch imported |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        made = f"{r['export_seconds']} | {r['folder_mb']}" if "export_seconds" in r else "– | –"
        lines.append(
            f"| {r['row']} | {r['precision']} | {made} | {r['load_seconds']} | {r['examples_per_second']} "
            f"| {r['peak_rss_mb']} | {100 * r['accuracy']:.2f} | {r['same_label']} / {s['texts']} "
            f"| {r['max_probability_difference']:.1e} | {'yes' if r['torch_imported'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def _seq_cls_bias(s: dict[str, Any]) -> str:
    """What the seq-cls rows leave out, where the run's calibration has a per-label bias."""
    bias = s.get("seq_cls_label_bias") or []
    if not any(bias):
        return ""
    shown = ", ".join(f"{b:.3f}" for b in bias)
    # The bias may come from vector scaling or from a prior correction beside a temperature.
    return (
        f"; the seq-cls export leaves a per-label bias ({shown}; the run keeps {s['calibration']} scaling) to its "
        "consumer, which the `seq-cls` rows, as plain transformers does, do not subtract"
    )


def gpu_scale_block() -> str:
    path = RESULTS / "gpu-scale.json"
    if not path.is_file():
        return (
            "No 7B row is measured yet. `benchmarks/gpu_check.sh` runs them in one device call "
            "(`benchmarks/gpu_scale.py`, whose dry run `--device cpu --tiny` is in the test suite); the log of the "
            "last attempt is `benchmarks/results/gpu-check-2026-12-04.log`.\n"
        )
    s = _read(path)
    lines = [
        f"{s['date']}, {s['device']} (driver {s.get('driver')}), {s['versions']}, commit `{s['commit']}`, "
        f"`{s['command']}`; "
        f"bf16 matmul peak measured in the same run: {s['matmul_peak_tflops_bf16']:.0f} TFLOP/s.",
        "",
        "| row | batch | examples/s | tokens/s | MFU | peak GiB | plan / measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        if "step_seconds" not in r:
            lines.append(f"| {r['model']} {r['row']} | | {r.get('error') or r.get('skipped')} | | | | |")
            continue
        plan = r.get("plan_over_measured", "–")
        lines.append(
            f"| {r['model']} {r['row']} | {r['batch']} | {r['examples_per_second']:.1f} | {r['tokens_per_second']:.0f} "
            f"| {100 * r['mfu']:.1f}% | {r['peak_allocated_gib']} | {plan} |"
        )
    return "\n".join(lines) + "\n"
