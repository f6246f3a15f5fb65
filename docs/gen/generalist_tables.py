"""Tables of the generalists (the eight-corpus one and the shipped one), from their result files
(used by ``results.py``'s templates)."""

from __future__ import annotations

from typing import Any

from tables import NAMES, RESULTS, _about, _missing, _pct, _read


def generalist_held_out() -> str:
    path = RESULTS / "generalist" / "summary.json"
    missing = _missing(path, "python benchmarks/generalist.py")
    if missing:
        return missing
    s = _read(path)
    lines = [
        "| corpus (never trained on) | base zero-shot, calibrated | generalist, zero-shot "
        "| TF-IDF + LR, 256 examples |",
        "|---|---|---|---|",
    ]
    abouts = set()
    for name, c in s["held_out"].items():
        row = (c["base_zero_shot"], c["generalist"], c["tfidf_lr_256"])
        cells = " | ".join(f"{_pct(r['accuracy'])} / {_pct(r['macro_f1'])}" for r in row)
        lines.append(f"| {NAMES.get(name, name)} | {cells} |")
        abouts.add(_about(c["header"]))
    lines.append("")
    lines.append("Accuracy / macro-F1 on the test split, %, no dialogue context. " + "; ".join(sorted(abouts)) + ".")
    b = s.get("build")
    if b:
        lines += [
            "",
            f"Building it (`{b['command']}`) took {b['train_seconds'] / 3600:.1f} h of training and "
            f"{b['eval_seconds'] / 60:.0f} min of final evaluation ({b['train_examples_seen']:,} training examples) "
            f"on {b['header']['machine']}; its mean test macro-F1 over its {len(b['corpora'])} training corpora "
            f"is {_pct(b['mean_macro_f1'])}.",
        ]
    return "\n".join(lines) + "\n"


SHIPPED = RESULTS / "shipped-generalist" / "summary.json"
SHIPPED_COMMAND = "python benchmarks/shipped_generalist.py"


def shipped_generalist_table() -> str:
    """Zero-shot on every held-out corpus: the frozen backbone, the shipped generalist, the paper."""
    missing = _missing(SHIPPED, SHIPPED_COMMAND)
    if missing:
        return missing
    s = _read(SHIPPED)
    cells = s["cells"]
    eight = _read(RESULTS / "generalist" / "summary.json")["held_out"] if (RESULTS / "generalist").is_dir() else {}
    lines = [
        "| corpus (never trained on) | language | frozen backbone, best zero-shot | shipped generalist "
        "| ECE frozen → generalist | eight-corpus generalist | paper zero-shot (ChatGLM2-6B) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, g in cells.items():
        name, row = key.rsplit(".", 1)
        if row != "generalist":
            continue
        f = cells[f"{name}.frozen"]
        old = eight.get(name, {}).get("generalist")
        paper = s["paper_zero_shot"].get(name)
        paper_cell = "–" if paper is None else f"{paper['value']} ({paper['metric'].replace('_', '-')})"
        lang = "zh" if name in ("chnsenticorp", "smp2020-ewect", "cped-m3ed7") else "en"
        lines.append(
            f"| {NAMES.get(name, name)} | {lang} | {_pct(f['accuracy'])} / {_pct(f['macro_f1'])} "
            f"| {_pct(g['accuracy'])} / {_pct(g['macro_f1'])} | {_pct(f['ece'])} → {_pct(g['ece'])} "
            f"| {'–' if old is None else _pct(old['accuracy']) + ' / ' + _pct(old['macro_f1'])} "
            f"| {paper_cell} |"
        )
    v, m = cells.get("meld.variants"), cells.get("meld.generalist")
    lines += [
        "",
        f"Accuracy / macro-F1 and ECE, %, on {m['n'] if m else '–'} seeded test texts per corpus (all where fewer). "
        f"Measured on {_machines(cells)}, `{s['command']}` (cells at commit "
        f"{', '.join(sorted({f'`{c}`' for c in (x.get('commit') for x in cells.values()) if c}))}, "
        f"summary {s['date']} at `{s['commit']}`); the generalist "
        f"built at commit `{s['generalist']['commit']}` (temperature {s['generalist']['temperature']}). "
        "The eight-corpus generalist's figures are its own run's, on the whole test split "
        "(`benchmarks/results/generalist/summary.json`).",
    ]
    if v and m:
        lines += [
            "",
            f"Label names of the user's own on MELD ({', '.join(v['labels'])}): macro-F1 {_pct(v['macro_f1'])} "
            f"against {_pct(m['macro_f1'])} with the corpus's names.",
        ]
    return "\n".join(lines) + "\n"


def _machines(cells: dict[str, Any]) -> str:
    """The machines the cells ran on (a summary recomputed elsewhere does not move them)."""
    return " and ".join(sorted({c["machine"] for c in cells.values() if c.get("machine")}))


def shipped_generalist_temperature() -> str:
    """What one temperature for every held-out corpus could do (the summary's oracle grid)."""
    one = _read(SHIPPED).get("one_temperature") if SHIPPED.is_file() else None
    if not one:
        return f"`{SHIPPED_COMMAND}` has not scored other temperatures yet.\n"
    grid, best = one["grid"], one["nll_optimal"]
    top = max(grid.values(), key=lambda g: g["ece_at_most_5"])["ece_at_most_5"]
    at = ", ".join(t for t, g in grid.items() if g["ece_at_most_5"] == top)
    low, high = min(best, key=best.__getitem__), max(best, key=best.__getitem__)
    cells = " | ".join(f"{g['ece_at_most_5']} ({_pct(g['max_ece'])})" for g in grid.values())
    return (
        f"| temperature | {' | '.join(grid)} |\n|---|{'---|' * len(grid)}\n"
        f"| corpora with ECE ≤ 5% (largest ECE, %) | {cells} |\n\n"
        f"Every held-out corpus's zero-shot scored at each temperature instead of the shipped one, on the "
        f"same texts: an oracle fitted on the judged texts, which no shipped calibration may use. At best "
        f"{top} of {len(best)} corpora reach ECE ≤ 5% (temperature {at}). The temperature each corpus's "
        f"own NLL would pick runs from {best[low]} ({NAMES.get(low, low)}) to {best[high]} "
        f"({NAMES.get(high, high)}): no single temperature serves them all. {_own_best(one)}\n"
    )


def _own_best(one: dict[str, Any]) -> str:
    """Where even a corpus's own best temperature of the grid leaves ECE above 5%."""
    over = {n: b for n, b in one.get("own_best", {}).items() if b["ece"] > 0.05}
    if not over:
        return ""
    cells = ", ".join(f"{NAMES.get(n, n)} {_pct(b['ece'])} at {b['temperature']}" for n, b in over.items())
    return (
        f"Even each corpus's own best temperature of the grid leaves ECE above 5% on {len(over)}: {cells} "
        "(no temperature of the grid brings these under 5%)."
    )


def shipped_generalist_call_time() -> str:
    """How long `emotune predict TEXT` takes from a fresh shell, with and without the dev extras."""
    folder = SHIPPED.parent
    runs = {k: folder / f for k, f in (("readme", "call-time.json"), ("dev", "call-time-dev-extras.json"))}
    if not runs["readme"].is_file():
        return f"`emotune predict TEXT` from a fresh shell: `{SHIPPED_COMMAND} --call-time` has not been run."
    t = {k: _read(p) for k, p in runs.items() if p.is_file()}

    def span(k: str) -> str:
        return f"{min(t[k]['seconds']):.1f}–{max(t[k]['seconds']):.1f} s"

    dev = f" and {span('dev')} with the dev extras, whose bitsandbytes PEFT imports on start" if "dev" in t else ""
    r = t["readme"]
    return (
        f"`emotune predict TEXT` from a fresh shell took {span('readme')} with the README's install{dev} "
        f"({r['date']}, {r['machine']}, commit `{r['commit']}`, three runs after a warm-up; "
        f"`{SHIPPED_COMMAND} --call-time --emotune EXE`, `benchmarks/results/shipped-generalist/call-time.json`"
        f"{' and call-time-dev-extras.json' if dev else ''})."
    )


def shipped_generalist_row() -> str:
    """The README's zero-shot line: the shipped generalist's mean gain over the frozen backbone."""
    if not SHIPPED.is_file():
        return f"Zero-shot: `{SHIPPED_COMMAND}` has not been run.\n"
    s = _read(SHIPPED)
    pairs = [
        (c, s["cells"][k.replace(".generalist", ".frozen")]) for k, c in s["cells"].items() if k.endswith(".generalist")
    ]
    gain = sum(g["macro_f1"] - f["macro_f1"] for g, f in pairs) / len(pairs)
    met = sum(t["met"] for t in s["targets"])
    return (
        f"Zero-shot with the shipped generalist (no training data, `emotune predict --labels ...`), on {len(pairs)} "
        f"corpora it never saw: macro-F1 {100 * gain:+.1f} points over the frozen backbone on average; "
        f"{met} of {len(s['targets'])} targets met ([model card](docs/guides/generalist.md); {s['date']}, "
        f"{_machines(s['cells'])}, `{s['command']}`).\n"
    )


def shipped_generalist_start() -> str:
    """Fine-tuning from the shipped generalist against from scratch (and peers at 256)."""
    missing = _missing(SHIPPED, SHIPPED_COMMAND)
    if missing:
        return missing
    start = _read(SHIPPED).get("default_start") or {}
    lines = [
        "Test macro-F1 (%), LoRA with the default recipe from the shipped generalist (`--init-from "
        "generalist`) and from scratch, on the same seeded training subsets (mean over the seeds both ran; "
        "`benchmarks/default-start.yaml`, run 2026-12-06 at commits 6016a68 to e4e55e6 and, for SST-5 and "
        "SMP2020-EWECT seeds 43 and 44, 2026-12-07 at 6b0bf52, one recipe throughout "
        "(no dev split here has the 20 texts per label that vector scaling needs); Mastodon's 972 training texts "
        "make its 2,000 the 1,000 cell; and `benchmarks/small-data.yaml`, whose README dates its runs; each "
        "cell's file names its machine):",
        "",
        "| examples | corpus | seeds | from the generalist | from scratch |",
        "|---|---|---|---|---|",
    ]
    for size, per in start.get("curve", {}).items():
        for corpus, c in per.items():
            lines.append(f"| {size} | {corpus} | {c['seeds']} | {100 * c['shipped']:.1f} | {100 * c['scratch']:.1f} |")
        if size in start.get("mean", {}):
            m = start["mean"][size]
            lines.append(f"| {size} | **mean** | | **{100 * m['shipped']:.1f}** | **{100 * m['scratch']:.1f}** |")
    rows = start.get("transfer_256", {})
    if rows:
        heads = ("seeds", "from the generalist", "from scratch", "SetFit (MiniLM)", "classification head + LoRA")
        lines += ["", "At 256 examples beside what users pick instead (mean over the seeds all four ran; full test):"]
        lines += ["", "| corpus | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
        for corpus, r in rows.items():
            values = (r["shipped"], r["scratch"], r["setfit"], r["seq-cls head"])
            cells = " | ".join(f"{100 * v:.1f}" for v in values)
            lines.append(f"| {corpus} | {r.get('seeds', 1)} | {cells} |")
    pairs = start.get("vs_scratch_256", {})
    if pairs:
        each = "; ".join(
            f"{c} {100 * r['shipped']:.1f} vs {100 * r['scratch']:.1f} ({r['seeds']})" for c, r in pairs.items()
        )
        lines += ["", f"From the generalist vs from scratch at 256, mean over the seeds both ran (seeds): {each}."]
    return "\n".join(lines) + "\n"


def generalist_transfer() -> str:
    path = RESULTS / "generalist" / "summary.json"
    missing = _missing(path, "python benchmarks/generalist.py")
    if missing:
        return missing
    s = _read(path)
    methods = ("lora-256", "generalist-256", "setfit-256", "seq-cls-lora-256", "tfidf-lr-256")
    heads = ("today's default", "from the generalist", "SetFit (MiniLM)", "classification head + LoRA", "TF-IDF + LR")
    lines = ["| corpus | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for name, per in sorted(s["transfer_256"].items()):
        if "generalist-256" not in per and "setfit-256" not in per:
            continue
        cells = [f"{_pct(per[m]['macro_f1'])} ({len(per[m]['seeds'])})" if m in per else "–" for m in methods]
        lines.append(f"| {NAMES.get(name, name)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Macro-F1 on the test split, %, mean over (seeds); 256 training examples, the same seeded subsets. Cells: "
        "`benchmarks/results/generalist/transfer/cells` (`emotune bench --matrix benchmarks/generalist.yaml`) and, "
        "for today's default and TF-IDF + LR, `benchmarks/results/small-data/cells`; each names its machine."
    )
    full = s.get("full_budget") or {}
    if full:
        lines += [
            "",
            "| corpus | accuracy / macro-F1: today's default (seeds) | started from the generalist (1 seed) |",
            "|---|---|---|",
        ]
        for name, c in full.items():
            g, t = c["from_generalist"], c.get("today_default")
            today = f"{_pct(t['accuracy'])} / {_pct(t['macro_f1'])} ({t['seeds']})" if t else "–"
            lines.append(f"| {NAMES.get(name, name)} | {today} | {_pct(g['accuracy'])} / {_pct(g['macro_f1'])} |")
        lines += [
            "",
            "The whole training split, test split scored; "
            + "; ".join(sorted({_about(c["header"]) for c in full.values()}))
            + ".",
        ]
    return "\n".join(lines) + "\n"
