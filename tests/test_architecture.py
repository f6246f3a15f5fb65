"""The seams of the design: no import cycles, no import up a layer, one writer of the run files,
one pipeline and one calibration step, a torch-free CLI parser, methods that own their options and
properties, new methods (DoRA, IA3) and a backbone family with no PEFT mapping (GLM)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emotune.config import RunConfig
from emotune.errors import EmotuneError
from emotune.inference.predict import Predictor
from emotune.methods import get_method, method_class, method_names
from emotune.pipeline import run
from helpers import tiny_config

SRC = Path(__file__).resolve().parents[1] / "src" / "emotune"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Every emotune module ``path`` imports, at any depth (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def _is_type_checking_only(path: Path) -> set[str]:
    """Modules imported only under ``if TYPE_CHECKING:`` (no runtime edge)."""
    hidden = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    hidden.add(inner.module)
    return hidden


def test_no_import_cycles_among_emotune_modules() -> None:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        edges = _imports(path, set(files)) - _is_type_checking_only(path)
        # A package's own submodules are imported by its __init__; that is not a cycle back.
        graph[name] = {e for e in edges if e != name and not name.startswith(e + ".")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


#: The layers, lowest first: a module may import its own layer and those below, never one above
#: (function-level imports count; ``if TYPE_CHECKING:`` imports do not). A package's modules all
#: sit in its layer; top-level modules sit where they are named.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "storage", "distributed"),
    ("methods", "metrics", "calibration", "rundir"),
    ("config", "overrides"),
    ("data",),
    ("models",),
    ("evaluate",),
    ("training", "planning"),
    ("inference",),
    ("distill", "serve"),
    ("pipeline",),
    ("bench", "quickstart"),
    ("cli",),
    ("emotune", "__main__"),  # the package's own __init__ (Predictor at the top level), python -m emotune
)


def _unit(module: str) -> str:
    """The layer unit of a module: its sub-package or top-level module (``emotune`` for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _root_names(path: Path) -> set[str]:
    """``{"emotune"}`` when ``path`` takes a name from the root package that is not a submodule."""
    for node in ast.walk(ast.parse(path.read_text())):
        names = node.names if isinstance(node, ast.ImportFrom) and node.module == "emotune" else []
        if any(not (SRC / f"{a.name}.py").is_file() and not (SRC / a.name).is_dir() for a in names):
            return {"emotune"}
    return set()


def test_no_import_points_up_a_layer() -> None:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    level = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    units = {_unit(m) for m in files} - {"resources"}
    assert units <= set(level), f"modules in no layer: {sorted(units - set(level))}"
    upward = []
    for name, path in sorted(files.items()):
        targets = _imports(path, set(files)) - _is_type_checking_only(path)
        if any(t.startswith("emotune.") for t in targets):
            # `from emotune import rundir` names the root package only to reach a submodule.
            targets -= {"emotune"} - _root_names(path)
        for target in sorted(targets):
            if level.get(_unit(target), -1) > level.get(_unit(name), -1):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports up a layer: " + "; ".join(upward)


def _calls(name: str) -> dict[str, list[ast.Call]]:
    """Every call of a function named ``name`` in src, by module."""
    found: dict[str, list[ast.Call]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and name in (getattr(func, "id", None), getattr(func, "attr", None)):
                found.setdefault(_module_name(path), []).append(node)
    return found


RUN_FILES = {"run.json", "emotune.json", "RUN_FILE", "EXPORT_FILE"}


def _names_a_run_file(call: ast.Call) -> bool:
    for node in ast.walk(call):
        if isinstance(node, ast.Constant) and node.value in RUN_FILES:
            return True
        if isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) in RUN_FILES:
            return True
    return False


def test_run_files_have_one_writer() -> None:
    """run.json and emotune.json are written only by `emotune.rundir` (RunMeta, ExportMeta and
    SeqClsBlock own them): no other module hands their names to a writer."""
    writers = [c for n in ("write_json", "write_text", "dump", "open") for c in _calls(n).items()]
    outside = [m for m, calls in writers if not m.startswith("emotune.rundir") and any(map(_names_a_run_file, calls))]
    assert not outside, f"run files written outside emotune.rundir: {outside}"


def test_one_pipeline_and_one_calibration_step() -> None:
    """Training and calibration are called from one flow (and distillation), and logits meet a
    run's calibration in one function (`emotune.calibration.calibrated`) on every backend."""
    assert set(_calls("fit")) >= {"emotune.pipeline.flow"}
    assert {m for m in _calls("fit") if m.startswith("emotune.pipeline")} == {"emotune.pipeline.flow"}
    # `calibrate(...)`, the step (a zero-shot recogniser's own `rec.calibrate()` is content-free calibration).
    step = {m for m, calls in _calls("calibrate").items() if any(isinstance(c.func, ast.Name) for c in calls)}
    assert step == {"emotune.pipeline.flow", "emotune.distill.run"}
    assert set(_calls("fit_temperature")) <= {"emotune.calibration", "emotune.training.calibrate"}
    dividing = re.compile(r"/\s*\w+\.temperature\b")
    by_hand = [
        f"{_module_name(p)}:{i}"
        for p in SRC.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if dividing.search(line) and "1.0 / rec.temperature" not in line  # the seq-cls export folds it
    ]
    assert not by_hand, f"logits divided by a temperature outside emotune.calibration.calibrated: {by_hand}"


#: The functions outside the CLI, the pipeline and ``config.py`` that take a whole `RunConfig`
#: (issue: at most four): a run's backbone is built, a run planned and a baseline run from it.
TAKES_RUN_CONFIG = {
    "emotune.planning.report.plan_text",
    "emotune.planning.report.request_from_config",
    "emotune.models.recogniser.build_recogniser",
    "emotune.bench.baselines.run_baseline",
}


def test_the_run_config_does_not_travel() -> None:
    """Pieces take the settings they need; a new function taking the whole run config fails here."""
    takers = set()
    for path in SRC.rglob("*.py"):
        module = _module_name(path)
        if module.startswith(("emotune.cli", "emotune.pipeline")) or module == "emotune.config":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
                if any(a.annotation is not None and "RunConfig" in ast.unparse(a.annotation) for a in args):
                    takers.add(f"{module}.{node.name}")
    assert takers == TAKES_RUN_CONFIG


def test_the_cli_and_config_load_without_torch() -> None:
    heavy = "('torch', 'transformers', 'peft')"
    code = f"import sys, emotune.cli, emotune.config; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_methods_declare_their_options_and_properties() -> None:
    assert {"zero-shot", "lora", "dora", "ia3", "ptuning-v2", "prompt-tuning"} <= set(method_names())
    for name in method_names():
        cls = method_class(name)
        method = get_method(cls.options_class())
        assert method.name == name
        assert isinstance(method.trainable, bool) and isinstance(method.needs_adapter, bool)
        assert isinstance(method.mergeable, bool) and isinstance(method.calibrates, bool)
    assert not method_class("zero-shot").trainable and not method_class("zero-shot").needs_adapter
    assert method_class("lora").mergeable and not method_class("ptuning-v2").mergeable


def test_cli_method_flags_come_from_the_declarations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from emotune.cli import main, parser

    text = parser().parse_args(["train", "--method", "ptuning-v2", "--prompt-length", "8"])
    assert text.prompt_length == 8
    assert main(["train", "--method", "ptuning-v2", "--rank", "4", "--output", str(tmp_path / "r")]) == 2
    assert "method 'ptuning-v2' has no option 'rank'" in capsys.readouterr().err


def test_an_older_run_config_still_loads(tmp_path: Path) -> None:
    old = {
        "method": {"name": "ptuning-v2", "rank": 8, "prompt_length": 4, "calibrate": True},
        "train": {"max_length": 64, "precision": "fp32", "device": "cpu", "threads": 0, "epochs": 1},
    }
    cfg = RunConfig.from_dict(old, saved=True).validate()
    assert cfg.runtime.max_length == 64 and cfg.runtime.device == "cpu"
    assert cfg.method.to_dict() == {
        "name": "ptuning-v2",
        "prompt_length": 4,
        "prefix_projection": False,
        "projection_hidden": 512,
    }
    with pytest.raises(EmotuneError, match="no option 'rank'"):
        RunConfig.from_dict(old)


@pytest.mark.parametrize("method", ["dora", "ia3"])
def test_new_methods_train_save_and_reload(tiny_gemma: str, sentiment_files, tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    run(tiny_config(tiny_gemma, sentiment_files, str(out), method=method, epochs=2, lr=2e-2))
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == ("LORA" if method == "dora" else "IA3")
    assert config.get("use_dora", False) is (method == "dora")
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    preds = Predictor.load(out).predict([r["text"] for r in records])
    for record, pred in zip(records, preds, strict=True):
        assert pred.label == record["label"]
        assert all(abs(pred.scores[k] - v) < 1e-4 for k, v in record["scores"].items())


@pytest.fixture(scope="session")
def tiny_glm(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random-weight GLM (transformers' GlmForCausalLM, the ChatGLM successor)."""
    from conftest import build_model, build_tokenizer

    folder = tmp_path_factory.mktemp("tiny-glm")
    build_model("glm", folder, len(build_tokenizer(folder)))
    return str(folder)


@pytest.mark.parametrize("method", ["lora", "ptuning-v2"])
def test_glm_backbone_trains_with_default_targets(tiny_glm: str, sentiment_files, tmp_path: Path, method: str) -> None:
    out = tmp_path / method
    cfg = tiny_config(tiny_glm, sentiment_files, str(out), method=method, epochs=6, lr=2e-2)
    metrics = run(cfg)  # no target_modules anywhere: PEFT has no GLM mapping, so LoRA takes all-linear
    assert metrics["n"] == 8 and metrics["best_dev_macro_f1"] is not None
    if method == "lora":
        targets = json.loads((out / "adapter" / "adapter_config.json").read_text())["target_modules"]
        assert {"q_proj", "v_proj", "down_proj"} <= {t.rsplit(".", 1)[-1] for t in targets}
    assert Predictor.load(out).predict("a wonderful film")[0].label in ("negative", "positive")


def test_a_run_that_fails_early_leaves_nothing_behind(tiny_gemma: str, sentiment_files, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(tiny_gemma, sentiment_files, str(out))
    cfg.data.labels = ["negative", "neutral"]  # "positive" rows are then unknown labels: fails while loading
    with pytest.raises(EmotuneError, match="positive"):
        run(cfg)
    assert not out.exists()
    cfg.data.labels = ["negative", "positive"]
    assert run(cfg)["n"] == 8  # the retry needs no --overwrite


def test_backbones_load_with_transformers_own_layers(tiny_gemma: str) -> None:
    """transformers swaps in Hub kernels by default, which on a GPU fetches code from the Hub: an
    offline GPU machine could load no backbone (seen on an H200). emotune turns the swap off."""
    from emotune.models.backbones import load_backbone

    model, _ = load_backbone(tiny_gemma)
    assert model.use_kernels is False
