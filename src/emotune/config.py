"""Typed, self-validating run configuration; YAML is its serialised form.

The CLI builds a `RunConfig` from ``--config file.yaml``, then applies its flags and any
``--set section.key=value`` overrides through `emotune.overrides.apply_override`, then calls
``validate``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emotune.distributed import DEVICES
from emotune.errors import EmotuneError
from emotune.methods import MethodOptions, default_options, method_class, method_name_of
from emotune.methods.targets import PEFT_DEFAULT
from emotune.overrides import apply_override
from emotune.storage import check_encoding, read_yaml_mapping

OBJECTIVES = ("classify", "generate")
#: The values of ``model.dtype`` and ``model.quantization`` (`emotune.models.precision` reads them).
DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZATIONS = ("none", "8bit", "4bit")
PRECISIONS = ("auto", "fp32", "bf16")
CLASS_WEIGHTS = ("none", "balanced", "sqrt", "auto")
LOSSES = ("cross-entropy", "focal")
PRIOR_CORRECTIONS = ("none", "dev", "train")
LABEL_HEADS = ("frozen", "trainable")
LABEL_TOKENS = ("first", "all")
#: The languages emotune has prompts for (a custom data.template still names one of them).
PROMPT_LANGUAGES = ("en", "zh")
DEFAULT_METHOD = "lora"
SECTIONS = ("model", "method", "data", "train", "runtime")


@dataclass
class ModelConfig:
    """Which backbone to load and how."""

    # A registered backbone (emotune models), a model folder, a .gguf file or a Hub id.
    name: str = "gemma3-270m"
    # auto: bf16 weights on a GPU with bf16, fp16 on one without, fp32 (with bf16 autocast where
    # the CPU has native bf16) on a CPU; see emotune.models.precision.
    dtype: str = "auto"
    # 8bit / 4bit (nf4, double quantisation): bitsandbytes, pip install 'emotune[qlora]'.
    quantization: str = "none"
    # Run the model repository's own Python code (ChatGLM2-6B needs it).
    trust_remote_code: bool = False

    def validate(self) -> None:
        if self.dtype not in DTYPES:
            raise EmotuneError(f"model.dtype must be one of {DTYPES}, got '{self.dtype}'")
        if self.quantization not in QUANTIZATIONS:
            raise EmotuneError(f"model.quantization must be one of {QUANTIZATIONS}, got '{self.quantization}'")


@dataclass
class DataConfig:
    """Which dataset, where, and how it becomes a prompt."""

    dataset: str = "sst2"
    data_dir: str | None = None
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    # Text encoding of your own files (dataset "files"); a Latin-1 spreadsheet export: latin-1.
    encoding: str = "utf-8"
    labels: list[str] = field(default_factory=list)
    hf_name: str | None = None
    language: str | None = None
    # The prompt's task word ("sentiment", "emotion"); None: the corpus's own.
    task_word: str | None = None
    # Words that stand for each label in the prompt and are scored, one list per label.
    verbalisers: list[list[str]] | None = None
    # A prompt of your own; it must contain {text} (and may use {choices}, the label list).
    template: str | None = None
    # "first" scores a label word by its first token; "all" by every token (multi-token words).
    label_tokens: str = "first"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    max_dev_samples: int | None = None
    # None: the corpus's default (2 for Friends, chosen on dev; 0 elsewhere, the paper's setting).
    context_turns: int | None = None
    # Continuous-score corpora (MOSI): |score| below this counts as neutral.
    neutral_band: float = 0.0
    # Continuous-score corpora: leave neutral examples out (the binary task).
    drop_neutral: bool = False
    # Several corpora (data.dataset: a,b,c): training examples per corpus in proportion to
    # size ** (1 / mix_temperature), at most max_per_corpus each (see emotune.data.multi).
    mix_temperature: float = 2.0
    max_per_corpus: int | None = None
    # List the labels in a fresh order in each training prompt, so an adapter reads the label
    # names instead of learning positions (an emotion generalist takes new label sets later).
    shuffle_labels: bool = False
    # Several corpora: prompt each corpus also under this many reworded label sets ("happy" for
    # joy, "angry" for anger; emotune.data.wording), spreading its examples over them.
    label_variants: int = 0
    # Several corpora: corpora whose test texts are left out of every training corpus's train
    # and dev splits (the corpora a generalist is judged on).
    exclude_test_of: list[str] = field(default_factory=list)

    def validate(self) -> None:
        check_encoding(self.encoding)
        if self.neutral_band < 0:
            raise EmotuneError("data.neutral_band must be >= 0")
        if self.context_turns is not None and self.context_turns < 0:
            raise EmotuneError("data.context_turns must be >= 0")
        for key in ("max_train_samples", "max_eval_samples", "max_dev_samples"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise EmotuneError(f"data.{key} must be >= 1")
        if self.template is not None and "{text}" not in self.template:
            raise EmotuneError("data.template must contain '{text}'")
        if self.language is not None and self.language not in PROMPT_LANGUAGES:
            raise EmotuneError(f"data.language must be one of {PROMPT_LANGUAGES}, got '{self.language}'")
        if self.label_tokens not in LABEL_TOKENS:
            raise EmotuneError(f"data.label_tokens must be one of {LABEL_TOKENS}, got '{self.label_tokens}'")
        if self.mix_temperature <= 0 or (self.max_per_corpus is not None and self.max_per_corpus < 1):
            raise EmotuneError("data.mix_temperature must be > 0 and data.max_per_corpus >= 1")
        if self.label_variants < 0:
            raise EmotuneError("data.label_variants must be >= 0")
        if "," in self.dataset and (self.verbalisers or self.template or self.labels or self.train_file):
            raise EmotuneError("several corpora (data.dataset a,b) take each corpus's own labels, prompt and files")


@dataclass
class TrainConfig:
    """Optimisation, evaluation and checkpointing."""

    objective: str = "classify"
    # Three passes beat one at 1,000 examples on every corpus probed (dev macro-F1 +3.7 on
    # average: benchmarks/results/search/small-data-1000); below ~530 examples the floor decides.
    epochs: float = 3.0
    # Small sets: one epoch of 256 examples is 32 steps, too few to leave the majority label
    # (dev search: benchmarks/results/search/small-data-256). 0 turns the floor off; so does
    # giving train.epochs without it (see given_epochs).
    min_steps: int = 200
    # "auto" (stored as 0): the largest batch that fits the GPU (train.AUTO_START, halving).
    batch_size: int = 8
    grad_accum: int = 1
    lr: float | None = None
    warmup_ratio: float = 0.06
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 42
    # "auto" (sqrt weights on skewed sets) did not beat unweighted training on dev once the step
    # floor and all-linear LoRA were in (benchmarks/results/search/small-data-256): off by default.
    class_weights: str = "none"
    loss: str = "cross-entropy"
    focal_gamma: float = 2.0
    # Share of the target mass spread evenly over the labels (cross-entropy; multi-label: each
    # sigmoid's 0/1 target moves this far towards 1/2). 0 is the paper's.
    label_smoothing: float = 0.0
    eval_split: str = "test"
    eval_every: int = 0
    patience: int = 3
    checkpoint_every: int = 100
    log_every: int = 20
    # None: on for a quantised backbone (the QLoRA recipe: PEFT's k-bit preparation turns it on
    # too), off otherwise; true/false decide.
    gradient_checkpointing: bool | None = None
    # "dev": offsets fitted on dev; "train": logit adjustment by the training label frequencies.
    prior_correction: str = "none"
    prior_strength: float = 1.0
    # "frozen" scores with the backbone's own label-word rows; "trainable" trains a copy of them.
    label_head: str = "frozen"
    # A trained run whose adapter this run starts from (same backbone and method; the labels may
    # differ). "auto": the shipped generalist where its backbone and method options are this
    # run's (LoRA rank 8 on the default backbone), else a fresh adapter. Started from it, LoRA was
    # ahead of a fresh adapter at 256, 1,000 and 2,000 examples on the mean of three corpora it
    # never saw, 3 seeds (benchmarks/results/shipped-generalist). "none" (or null): a fresh adapter.
    init_from: str | None = "auto"
    # Temperature scaling (one temperature fitted on dev by NLL, emotune.calibration). None: on
    # for a trained single-label run with a dev split, off for zero-shot (whose content-free
    # calibration stays); true/false decide.
    temperature: bool | None = None
    # Vector scaling (a scale and a bias per label) instead of the temperature where it lowers the
    # NLL of a held-out half of dev, with >= 20 dev texts of every label (one label set only).
    vector_scaling: bool = True

    def _validate_smoothing(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise EmotuneError(f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        # Focal loss reads 0/1 targets and the LM objective scores label text: neither takes it.
        if self.label_smoothing and (self.loss != "cross-entropy" or self.objective != "classify"):
            raise EmotuneError("train.label_smoothing needs train.loss cross-entropy and train.objective classify")

    def validate(self) -> None:
        if self.prior_correction not in PRIOR_CORRECTIONS:
            raise EmotuneError(f"train.prior_correction must be one of {PRIOR_CORRECTIONS}")
        if self.prior_strength < 0:
            raise EmotuneError("train.prior_strength must be >= 0")
        if self.label_head not in LABEL_HEADS:
            raise EmotuneError(f"train.label_head must be one of {LABEL_HEADS}, got '{self.label_head}'")
        if self.objective not in OBJECTIVES:
            raise EmotuneError(f"train.objective must be one of {OBJECTIVES}, got '{self.objective}'")
        if self.loss not in LOSSES:
            raise EmotuneError(f"train.loss must be one of {LOSSES}")
        if self.class_weights not in CLASS_WEIGHTS:
            raise EmotuneError(f"train.class_weights must be one of {CLASS_WEIGHTS}")
        self._validate_smoothing()
        if self.init_from in ("none", ""):  # one spelling of "a fresh adapter" in saved configs
            self.init_from = None
        if self.min_steps < 0:
            raise EmotuneError("train.min_steps must be >= 0 (0: no floor)")
        if self.epochs <= 0 or self.batch_size < 0 or self.grad_accum < 1:
            raise EmotuneError("train.epochs, train.batch_size (or auto) and train.grad_accum must be positive")
        if self.lr is not None and self.lr <= 0:
            raise EmotuneError("train.lr must be positive")


def uses_checkpointing(setting: bool | None, quantized: bool) -> bool:
    """Whether a run recomputes activations: ``train.gradient_checkpointing``, or, left unset,
    whether the backbone is quantised."""
    return quantized if setting is None else setting


@dataclass
class RuntimeConfig:
    """Where and how forward passes run: shared by training, evaluation and prediction."""

    device: str = "auto"
    precision: str = "auto"
    max_length: int = 128
    threads: int = 0
    eval_batch_size: int = 0
    # torch.compile the decoder; batches are padded to multiples of compile_bucket tokens so it
    # compiles once per width (right padding changes no score: causal attention never reads it).
    compile: bool = False
    compile_bucket: int = 32

    def validate(self) -> None:
        if self.device not in DEVICES:
            raise EmotuneError(f"runtime.device must be one of {DEVICES}, got '{self.device}'")
        if self.precision not in PRECISIONS:
            raise EmotuneError(f"runtime.precision must be one of {PRECISIONS}, got '{self.precision}'")
        if self.max_length < 8:
            raise EmotuneError("runtime.max_length must be >= 8")
        if self.threads < 0:
            raise EmotuneError("runtime.threads must be >= 0 (0 = the library's default)")
        if self.compile_bucket < 1:
            raise EmotuneError("runtime.compile_bucket must be >= 1")
        if self.eval_batch_size < 0:
            raise EmotuneError("runtime.eval_batch_size must be >= 0 (0 = 16 on a CPU, 256 on a GPU)")


@dataclass
class RunConfig:
    """A whole run: model, method, data, training and where the run directory goes."""

    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodOptions = field(default_factory=lambda: default_options(DEFAULT_METHOD))
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    output: str = "runs/latest"
    overwrite: bool = False

    def validate(self) -> RunConfig:
        """Validates every section; returns ``self`` for chaining."""
        for section in (self.model, self.method, self.data, self.train, self.runtime):
            section.validate()
        if self.train.label_head == "trainable" and not method_class(method_name_of(self.method)).trainable:
            raise EmotuneError(
                f"train.label_head: trainable needs a method that trains, not '{method_name_of(self.method)}'"
            )
        if "," in self.data.dataset:
            self._validate_multi_corpus()
        return self

    def _validate_multi_corpus(self) -> None:
        """Several corpora train with label scoring over each example's own labels: the settings
        that assume one label set are refused in one line."""
        t = self.train
        one_label_set = {
            "train.objective generate": t.objective != "classify",
            "train.label_head trainable": t.label_head != "frozen",
            "train.class_weights": t.class_weights != "none",
            "train.loss focal": t.loss != "cross-entropy",
            "train.label_smoothing": bool(t.label_smoothing),
            "train.prior_correction": t.prior_correction != "none",
            "data.label_tokens all": self.data.label_tokens != "first",
        }
        refused = [name for name, on in one_label_set.items() if on]
        if refused:
            raise EmotuneError(f"several corpora (data.dataset a,b) do not take {', '.join(refused)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML-serialisable); the method section starts with its name."""
        return dataclasses.asdict(self) | {"method": self.method.to_dict()}

    def recipe(self) -> dict[str, Any]:
        """What the config trains: everything but where the run goes and whether it may be replaced."""
        return {k: v for k, v in self.to_dict().items() if k not in ("output", "overwrite")}

    def to_yaml(self, path: Path) -> None:
        """Writes the resolved config as YAML."""
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, saved: bool = False) -> RunConfig:
        """Builds a config from nested plain data, rejecting unknown keys.

        Args:
            data: Nested sections, as in the YAML form.
            saved: The data is a run directory's own ``config.yaml``, possibly written by an
                older emotune: its former layout (runtime keys under ``train``, every method's
                options in one section) is read too.
        """
        cfg = cls()
        items = _flatten(data)
        if saved:
            items = _upgrade_saved(items)
        # The method's name picks its options class, so it is set before any of its options.
        for key, value in sorted(items, key=lambda kv: kv[0] != "method.name"):
            apply_override(cfg, key, value)
        if not saved:
            given_epochs(cfg, {key for key, _ in items})
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path, *, saved: bool = False) -> RunConfig:
        """Reads a YAML config file (``saved``: a run directory's own, see `from_dict`)."""
        return cls.from_dict(read_yaml_mapping(Path(path)), saved=saved)


_RUNTIME_KEYS = tuple(f.name for f in dataclasses.fields(RuntimeConfig))


def given_epochs(cfg: RunConfig, keys: set[str]) -> None:
    """Epochs the user gives win over the step floor, the recipe's own default: with
    ``train.epochs`` among ``keys`` and ``train.min_steps`` not, the floor goes (0). The resolved
    value is what a run directory saves, so a resumed run keeps the meaning it started with."""
    if "train.epochs" in keys and "train.min_steps" not in keys:
        cfg.train.min_steps = 0


# Settings whose default changed, with the value an older saved config meant by leaving them out
# (or, for target_modules, by null): a resumed or re-evaluated older run keeps its recipe.
_FORMER_DEFAULTS = {"train.min_steps": 0, "train.init_from": None, "method.target_modules": [PEFT_DEFAULT]}
# Of those, the ones an older config leaves out altogether rather than writing as null.
_ADDED_SINCE = ("train.min_steps", "train.init_from")
_TARGETS_KEY = "target_modules"


def _upgrade_saved(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Reads an older run's config: ``train.<runtime key>`` moves to ``runtime.``; method options
    the named method does not have (the former shared section) are dropped; settings whose
    default changed since keep the value the run was made with."""
    name = dict(items).get("method.name", DEFAULT_METHOD)
    defaults = default_options(str(name)).to_dict()
    own = set(defaults) - {"name"}
    # Only LoRA-like methods changed their targets (IA3's null still means PEFT's table).
    former = {k: v for k, v in _FORMER_DEFAULTS.items() if k != "method.target_modules" or defaults.get(_TARGETS_KEY)}
    upgraded = []
    for key, value in items:
        section, _, leaf = key.partition(".")
        if section == "train" and leaf in _RUNTIME_KEYS:
            key = f"runtime.{leaf}"
        elif section == "method" and leaf != "name" and leaf not in own:
            continue
        if value is None and key in former:
            value = former[key]
        upgraded.append((key, value))
    present = {key for key, _ in upgraded}
    if any(k.startswith("train.") for k in present):
        upgraded += [(key, _FORMER_DEFAULTS[key]) for key in _ADDED_SINCE if key not in present]
    return upgraded


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and dotted in SECTIONS:
            items.extend(_flatten(value, dotted + "."))
        else:
            items.append((dotted, value))
    return items
