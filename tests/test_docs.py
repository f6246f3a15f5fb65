"""The README and the docs site: short, generated where they can be, and every code block checked.

Python blocks run against a tiny trained run. Shell blocks: every `emotune` command parses with
the real CLI, commands that build a run config build and validate it, and `emotune predict
--run ... TEXT` commands run against the tiny run. JSON and YAML blocks parse (a YAML block with
run sections builds a valid RunConfig).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from emotune.cli import build_config, main, parser
from emotune.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "gen"))
reference = importlib.import_module("reference")  # docs/gen/: the generators of the docs' pages
results = importlib.import_module("results")

PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if ".template" not in p.name)]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
#: Run directories the docs name, all played by the tiny trained run.
RUN_NAMES = ("runs/quickstart/lora", "runs/lora", "runs/student", "runs/friends", "runs/goemo", "runs/mine")


def blocks(kind: str) -> list[tuple[str, str]]:
    """(page, code) for every fenced block of ``kind`` in the README and the docs."""
    found = []
    for page in PAGES:
        for lang, code in FENCE.findall(page.read_text()):
            if lang == kind:
                found.append((page.relative_to(ROOT).as_posix(), code))
    return found


def commands(code: str) -> list[list[str]]:
    """The shell commands of a block, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in text.splitlines():
        for part in re.split(r"\s&&\s", line.split(" #", 1)[0]):
            if part.strip() and not part.strip().startswith("#"):
                out.append(shlex.split(part))
    return out


def emotune_argv(argv: list[str]) -> list[str] | None:
    """The emotune arguments of a command (also under accelerate launch / torchrun)."""
    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
        argv = argv[1:]  # KEY=value environment prefixes
    if argv[:1] == ["emotune"]:
        return argv[1:]
    if "emotune.cli" in argv:
        rest = argv[argv.index("emotune.cli") + 1 :]
        return rest[1:] if rest[:1] == ["--"] else rest  # torchrun ... -m emotune.cli -- predict ...
    return None


def test_readme_is_short_with_results_first() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 220
    start = readme.index("<!-- results:start -->")
    assert start < 70 and readme[start + 3].startswith("| SST-2 |")  # the table, within 80 lines


def _numbers(text: str) -> str:
    """A generated text without the facts it reads from git (dates and commits), which a
    shallow clone cannot give: what is left comes from the result files."""
    text = re.sub(r"^\| (?:date|commit) \|.*$", "", text, flags=re.M)
    return re.sub(r"Cells committed .*? on ", "", text)


def test_generated_copies_are_current() -> None:
    readme = (ROOT / "README.md").read_text()
    fresh = results.readme_with_blocks(readme)
    assert _numbers(fresh) == _numbers(readme), "stale: run python docs/gen/results.py --write"
    for page in results.PAGES:
        committed, built = (ROOT / "docs" / page).read_text(), results.from_template(page)
        assert _numbers(committed) == _numbers(built), f"{page} is stale: run python docs/gen/results.py --write"


def test_docs_never_narrate_sessions_rounds_or_issues() -> None:
    for page in PAGES:
        prose = FENCE.sub("", page.read_text())
        hits = re.findall(r"\b(?:sessions?|rounds?|issue ?#?\d+)\b", prose, re.I)
        assert not hits, f"{page.name}: {hits}"


def test_cli_reference_holds_every_flag_and_a_new_one(monkeypatch: pytest.MonkeyPatch) -> None:
    page = reference.cli_markdown()
    root = parser()
    for name, sub in reference._subcommands(root).items():
        assert f"## emotune {name}" in page
        for action in sub._actions:
            for option in [] if isinstance(action, argparse._HelpAction) else action.option_strings:
                assert f"`{option}`" in page, option
    real = parser

    def with_new_flag() -> argparse.ArgumentParser:
        built = real()
        reference._subcommands(built)["predict"].add_argument("--brand-new", help="a flag added in code")
        return built

    monkeypatch.setattr("emotune.cli.parser", with_new_flag)
    assert "| `--brand-new` | str |  | a flag added in code |" in reference.cli_markdown()


def test_configuration_reference_holds_every_key() -> None:
    page = reference.config_markdown()
    flat = RunConfig().to_dict()
    for section in ("model", "data", "train", "runtime"):
        for key in flat[section]:
            assert f"`{section}.{key}`" in page, f"{section}.{key}"
    assert "`method.rank`" in page and "`temperature`" in page  # a method's options, distill.yaml


def test_run_directory_reference_matches_a_real_run(tiny_run: Path) -> None:
    from emotune.rundir import RUN_LAYOUT

    always = [path for path, what in RUN_LAYOUT if "(when" not in what]
    assert always and all((tiny_run / path.rstrip("/")).exists() for path in always)
    assert (tiny_run / "adapter").is_dir()  # a trained run has the "(when trained)" entries too


def test_datasets_and_methods_pages_list_the_registries() -> None:
    from emotune.data import dataset_names
    from emotune.methods import method_names

    datasets, methods = reference.datasets_markdown(), reference.methods_markdown()
    assert all(f"`{name}`" in datasets for name in dataset_names())
    assert all(f"## {name}" in methods for name in method_names())


@pytest.fixture(scope="module")
def merged(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emotune.inference.export import export

    folder = tmp_path_factory.mktemp("docs") / "merged"
    export(tiny_run, "merged", folder)
    return folder


@pytest.fixture(scope="module")
def seq_cls(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emotune.inference.export import export

    folder = tmp_path_factory.mktemp("docs") / "seq-cls"
    export(tiny_run, "seq-cls", folder)
    return folder


#: A block that loads the real default backbone (the shipped generalist, or labels at call time
#: with neither a model nor an adapter) is a slow test.
REAL_BACKBONE = re.compile(r"Predictor\.generalist\(|Predictor\.zero_shot\((?![^)]*(model|adapter)=)")


def python_blocks() -> list[Any]:
    return [
        pytest.param(p, c, marks=pytest.mark.slow) if REAL_BACKBONE.search(c) else (p, c) for p, c in blocks("python")
    ]


@pytest.mark.parametrize("page, code", python_blocks(), ids=lambda v: v if v.endswith(".md") else "")
def test_python_blocks_run(
    page: str, code: str, tiny_run: Path, merged: Path, seq_cls: Path, capsys, tmp_path: Path
) -> None:
    for name in RUN_NAMES:
        code = code.replace(f'"{name}"', repr(str(tiny_run)))
    code = code.replace("models/sst2-merged", str(merged)).replace("models/sst2-seq-cls", str(seq_cls))
    code = code.replace('"models/', f'"{tmp_path}/')  # what a block writes goes to a temp folder
    exec(compile(code, page, "exec"), {"RUN": str(tiny_run), "__name__": "__docs__"})
    assert capsys.readouterr().out.strip(), f"{page}: a block that prints nothing shows nothing"


@pytest.mark.parametrize("page, code", blocks("bash"), ids=lambda v: v if v.endswith(".md") else "")
def test_shell_blocks_parse_and_predict(
    page: str, code: str, tiny_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for argv in commands(code):
        args = emotune_argv(argv)
        if args is None:
            if argv[:1] == ["python"] and argv[1:2] and argv[1].endswith(".py"):
                assert (ROOT / argv[1]).is_file(), f"{page}: {argv[1]} does not exist"
            continue
        if "--help" in args:
            with pytest.raises(SystemExit, match="0"):
                parser().parse_args(args)
            continue
        parsed = parser().parse_args(args)
        config = getattr(parsed, "config", None)
        if parsed.command in ("train", "plan") and (config is None or (ROOT / config).is_file()):
            build_config(parsed)  # every key and value the command sets is valid
        if parsed.command == "predict" and parsed.texts and not parsed.input and parsed.run in RUN_NAMES:
            monkeypatch.chdir(tiny_run.parent)
            args[args.index("--run") + 1] = str(tiny_run)
            assert main(args) == 0, f"{page}: {shlex.join(argv)}"
            row = json.loads(capsys.readouterr().out.splitlines()[0])
            assert row["label"] or ("--min-confidence" in args and row["scores"])  # no label: it abstained


@pytest.mark.parametrize("page, code", blocks("json") + blocks("yaml"), ids=lambda v: v if v.endswith(".md") else "")
def test_data_blocks_parse(page: str, code: str) -> None:
    data = yaml.safe_load(code)  # JSON is YAML
    if isinstance(data, dict) and set(data) & {"model", "method", "data", "train", "runtime"}:
        RunConfig.from_dict(data).validate()


def _prose(page: Path) -> str:
    """A hand-written page without its code, links and generated blocks."""
    text = FENCE.sub("", page.read_text())
    text = re.sub(r"<!-- (\w+):start -->.*?<!-- \1:end -->", "", text, flags=re.S)
    text = re.sub(r"\{\{.*?\}\}", "", text, flags=re.S)
    return re.sub(r"`[^`]*`|\]\([^)]*\)", "", text)


#: Decimals hand-written prose may hold: versions, not measurements.
VERSIONS = re.compile(r"Apache-\d\.\d|Python \d\.\d+|transformers \d\.\d+")


def test_hand_written_prose_holds_no_measured_figures() -> None:
    # A generated page's template is hand-written outside its {{ blocks }}; the page itself is not.
    templates = sorted((ROOT / "docs").rglob("*.template.md"))
    for page in [*PAGES, *templates]:
        if page.read_text().startswith("<!-- generated"):
            continue  # its figures come from benchmarks/results/ (test_generated_copies_are_current)
        decimals = re.findall(r"\b\d+\.\d+\b", VERSIONS.sub("", _prose(page)))
        assert not decimals, f"{page.name}: {decimals}: read figures from benchmarks/results/ (docs/gen/results.py)"


def test_distillation_guide_defaults_match_the_config() -> None:
    from emotune.distill.config import DistillConfig

    page = (ROOT / "docs/guides/distillation.md").read_text()
    rows = dict(re.findall(r"^\| (`--[^|]+) \| ([^|]+) \|", page, re.M))
    d = DistillConfig()
    assert rows["`--student`"].strip("`") == d.student
    assert float(rows["`--temperature`"].strip("`")) == d.temperature
    assert float(rows["`--alpha`"].strip("`")) == d.alpha
    assert int(rows["`--max-length`"]) == d.max_length
    epochs, batch, lr = (v.strip() for v in rows["`--epochs`, `--batch-size`, `--lr`"].split(","))
    assert (int(epochs), int(batch), float(lr)) == (d.epochs, d.batch_size, d.lr)
