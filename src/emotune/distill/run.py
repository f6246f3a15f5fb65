"""``emotune distill``: a trained run teaches a small encoder, which becomes a run of its own.

The student's run directory::

    RUN/
      distill.yaml        the distillation's settings (teacher, student, temperature, alpha, ...)
      config.yaml         the data and evaluation settings it shares with its teacher
      run.json            labels, language, task (as for any run) and the teacher it came from
      dataset_card.json   the teacher's card plus ``distillation``: teacher, student, recipe
      teacher-scores/     the teacher's probabilities per text (kept: a re-run never recomputes them)
      student/            encoder, tokenizer.json, head.safetensors, student.json (and model.onnx)
      metrics.json, predictions.jsonl   on the teacher's evaluation split
      distill.log         the distillation's log

Every check of the input runs before the folder is created, so bad input leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emotune.config import RunConfig, TrainConfig
from emotune.data import Dataset, Example, Selection, load_data, select_splits
from emotune.distill.config import DISTILL_FILE, DistillConfig
from emotune.distill.student import StudentTrainer, student_result, targets_for
from emotune.distill.teacher import SCORES_DIR, check_teacher, read_scores, read_unlabelled, score
from emotune.errors import EmotuneError
from emotune.evaluate import write_result
from emotune.inference.predict import Predictor, trained_context_turns
from emotune.models.encoder import MINILM, EncoderRecogniser, new_student, resolve_encoder, save_student
from emotune.models.text_pairs import STUDENT_DIR, PairEncoder
from emotune.rundir import RunMeta, attach_log, check_replaceable, detach_log
from emotune.storage import atomic_dir, make_dirs, read_json, write_json
from emotune.training.calibrate import calibrate

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """Everything a distillation reads, checked before anything is written."""

    cfg: DistillConfig
    teacher_cfg: RunConfig
    teacher_meta: RunMeta
    source: str
    dataset: Dataset
    chosen: Selection
    unlabelled: list[Example]


def distill_config(teacher: str, output: str, overrides: list[tuple[str, Any]]) -> DistillConfig:
    """Settings for distilling ``teacher`` into ``output``: the teacher's data, then ``overrides``."""
    teacher_cfg, _ = check_teacher(Path(teacher))
    cfg = DistillConfig(teacher=teacher, output=output, data=teacher_cfg.data)
    return cfg.override(overrides).validate()


def plan(cfg: DistillConfig) -> Plan:
    """Reads and checks the teacher, the student, the data and the unlabelled texts.

    Raises:
        EmotuneError: For a teacher that is not a classifier, an unknown student, a data set
            whose labels differ from the teacher's, or an empty unlabelled file.
    """
    teacher = Path(cfg.teacher)
    teacher_cfg, meta = check_teacher(teacher)
    source = resolve_encoder(cfg.student)
    data = cfg.data if cfg.data.context_turns is not None else _with_turns(cfg, teacher)
    dataset = load_data(data, teacher_cfg.train.seed)
    if warning := student_language_warning(cfg.student, dataset.language):
        log.warning(warning)
    names = tuple(meta.labels["names"])
    if dataset.labels.names != names or dataset.multi_label != meta.multi_label:
        raise EmotuneError(f"the data's labels {list(dataset.labels.names)} differ from the teacher's {list(names)}")
    chosen = select_splits(dataset, data, teacher_cfg.train.seed, teacher_cfg.train.eval_split)
    unlabelled = (
        read_unlabelled(Path(cfg.unlabelled), cfg.text_column, cfg.max_unlabelled, data.encoding)
        if cfg.unlabelled
        else []
    )
    if not chosen.train and not unlabelled:
        raise EmotuneError(
            "nothing to distil on: the data has no training split and no unlabelled file was given",
            settings=("unlabelled",),
        )
    return Plan(cfg, teacher_cfg, meta, source, dataset, chosen, unlabelled)


def student_language_warning(student: str, language: str) -> str | None:
    """What to tell a user distilling texts of another language than English into the default
    student, an English sentence encoder (on the Chinese SMP2020-EWECT its student stays far below
    TF-IDF + LR: benchmarks/results/distill); None otherwise."""
    if student != MINILM or language == "en":
        return None
    return f"the default student {MINILM} is an English encoder; for '{language}' texts choose a multilingual student"


def _with_turns(cfg: DistillConfig, teacher: Path) -> Any:
    from dataclasses import replace

    return replace(cfg.data, context_turns=trained_context_turns(teacher))


def distill(cfg: DistillConfig) -> dict[str, Any]:
    """Distils ``cfg.teacher`` into a student run at ``cfg.output``; a re-run resumes.

    Returns:
        The student's metrics on the evaluation split, with the teacher's headline beside them.
    """
    # The output folder is checked before anything loads, so a refusal costs nothing and an
    # unusable student or data set never leaves an overwritten folder behind.
    replace = _check_output(Path(cfg.output), cfg)
    p = plan(cfg)
    folder = _prepare(Path(cfg.output), replace)
    handler = attach_log(folder, "distill.log")
    try:
        return _distill(p, folder)
    finally:
        detach_log(handler)


def _distill(p: Plan, folder: Path) -> dict[str, Any]:
    cfg = p.cfg
    _write_run_files(p, folder)
    scores = teacher_scores(p, folder)
    started = time.perf_counter()
    rec, tokenizer, spec = _fresh_student(p)
    examples = [*p.chosen.train, *p.unlabelled]
    history = StudentTrainer(rec, cfg, p.dataset.headline_metric).fit(targets_for(examples, scores), p.chosen.dev)
    _scale_temperature(rec, p, folder)
    train_s = time.perf_counter() - started
    with atomic_dir(folder / STUDENT_DIR) as tmp:
        save_student(rec.model, tokenizer, spec, tmp)
        _export_onnx(rec, tmp)
    return _evaluate(p, folder, rec, history | {"train_seconds": round(train_s, 1), "texts": len(examples)})


def _scale_temperature(rec: Any, p: Plan, folder: Path) -> None:
    """The student's own calibration, by the step a trained run's takes (run.json keeps it)."""
    calibrate(rec, p.chosen, TrainConfig(temperature=True), p.dataset.headline_metric, trained=True)
    meta = RunMeta.load(folder)
    meta.temperature, meta.threshold = rec.temperature, rec.threshold
    meta.class_scaling = rec.class_scaling.to_dict() if rec.class_scaling else None
    meta.save(folder)


def _check_output(folder: Path, cfg: DistillConfig) -> bool:
    """Whether ``folder`` is to be replaced; raises where it may be neither replaced nor resumed."""
    saved = folder / DISTILL_FILE
    if not (folder.exists() and any(folder.iterdir())):
        return False
    check_replaceable(folder)
    if cfg.overwrite:
        return True
    if not saved.is_file():
        raise EmotuneError(
            f"{folder}: exists and is not a distillation; pass overwrite or choose another output",
            settings=("overwrite", "output"),
        )
    if (folder / "metrics.json").is_file():
        raise EmotuneError(f"{folder}: distillation finished; pass overwrite to distil again", settings=("overwrite",))
    if Path(DistillConfig.from_yaml(saved).teacher).resolve() != Path(cfg.teacher).resolve():
        raise EmotuneError(
            f"{folder}: holds a distillation of another teacher; pass overwrite", settings=("overwrite",)
        )
    log.info("%s: resuming the distillation (teacher scores are kept)", folder)
    return False


def _prepare(folder: Path, replace: bool) -> Path:
    """Creates the run directory (emptied first when it is replaced); a resumed one is kept."""
    if replace:
        shutil.rmtree(folder)
    return make_dirs(folder)


def _write_run_files(p: Plan, folder: Path) -> None:
    p.cfg.to_yaml(folder / DISTILL_FILE)
    run_cfg = RunConfig.from_yaml(Path(p.cfg.teacher) / "config.yaml", saved=True)
    run_cfg.data, run_cfg.output = p.cfg.data, str(folder)
    run_cfg.to_yaml(folder / "config.yaml")
    # The teacher's label bias and calibration are its own: the student fits its own.
    meta = dataclasses.replace(p.teacher_meta, head_bias=None, temperature=1.0, class_scaling=None)
    meta.teacher, meta.student = p.cfg.teacher, p.cfg.student
    meta.save(folder)
    card_file = Path(p.cfg.teacher) / "dataset_card.json"
    card = read_json(card_file) if card_file.is_file() else {}
    write_json(folder / "dataset_card.json", card | {"distillation": _recipe(p)})


def _recipe(p: Plan) -> dict[str, Any]:
    """What the student's card says about where it came from."""
    cfg = p.cfg
    return {
        "teacher": cfg.teacher,
        "teacher_backbone": p.teacher_cfg.model.name,
        "teacher_method": p.teacher_cfg.method.to_dict().get("name"),
        "student": cfg.student,
        "labelled_texts": len(p.chosen.train),
        "unlabelled_texts": len(p.unlabelled),
        "loss": f"{cfg.alpha} * T^2 * KL(teacher_T || student_T) + {1 - cfg.alpha:g} * CE(gold), T = {cfg.temperature}",
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "selection": f"the epoch with the best dev {p.dataset.headline_metric}",
    }


def teacher_scores(p: Plan, folder: Path) -> list[list[float]]:
    """The teacher's probabilities for the training texts, then the unlabelled ones; the teacher
    loads only for texts it has not scored yet."""
    target = folder / SCORES_DIR
    parts = [
        (target / name, rows) for name, rows in (("train.jsonl", p.chosen.train), ("unlabelled.jsonl", p.unlabelled))
    ]
    todo = [(file, rows) for file, rows in parts if rows and not file.is_file()]
    if todo:
        predictor = Predictor.load(p.cfg.teacher)
        log.info("teacher %s scores %d texts", p.cfg.teacher, sum(len(rows) for _, rows in todo))
        for file, rows in todo:
            score(predictor, rows, file)
        del predictor
        gc.collect()  # the teacher's weights go before the student's training starts
    return [row for file, rows in parts if rows for row in read_scores(file, rows)]


def _fresh_student(p: Plan) -> tuple[EncoderRecogniser, Any, Any]:
    torch.manual_seed(p.cfg.seed)
    labels = p.dataset.labels
    model, tokenizer, spec = new_student(p.source, len(labels), p.cfg.max_length)
    spec = type(spec)(p.cfg.student, spec.max_length, spec.pad_id, spec.type_ids)
    inputs = PairEncoder(_fast_tokenizer(tokenizer), spec)
    threshold = p.teacher_meta.threshold
    return EncoderRecogniser(model, inputs, labels, p.dataset.multi_label, threshold), tokenizer, spec


def _fast_tokenizer(tokenizer: Any) -> Any:
    """The ``tokenizers`` object under a transformers fast tokenizer, copied (settings are per object)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())


def _export_onnx(rec: EncoderRecogniser, folder: Path) -> None:
    """``model.onnx`` beside the weights, so prediction starts without torch (skipped without onnx)."""
    from emotune.inference.student_export import export_student_onnx, onnx_available

    if onnx_available():
        export_student_onnx(rec, folder / "model.onnx")
    else:
        log.warning("no onnx extra: the student predicts with torch (pip install 'emotune[onnx]' for fast start-up)")


def _evaluate(p: Plan, folder: Path, rec: EncoderRecogniser, history: dict[str, Any]) -> dict[str, Any]:
    split = p.teacher_cfg.train.eval_split
    result = student_result(rec, p.chosen.eval)
    teacher_metrics = Path(p.cfg.teacher) / "metrics.json"
    teacher = read_json(teacher_metrics) if teacher_metrics.is_file() else {}
    headline = p.dataset.headline_metric
    extra = {
        "method": "distilled",
        "dataset": p.dataset.name,
        "split": split,
        "student": p.cfg.student,
        "teacher": p.cfg.teacher,
        f"teacher_{headline}": teacher.get(headline),
        "distillation": history,
    }
    write_result(result, folder, extra)
    return {**result.metrics, **extra}
