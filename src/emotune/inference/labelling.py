"""Labelling a file: streamed in chunks, resumable, one output row per input row, in one process
or split between several (``accelerate launch``, ``torchrun``, any number of machines).

Rows go to ``OUTPUT.partial`` chunk by chunk (flushed and synced); a re-run after a crash keeps
the complete rows there, skips that many input rows and goes on. The finished file is renamed
``OUTPUT`` only at the end, so ``OUTPUT`` is always complete.

With several processes every process streams the whole input, so each row gets exactly the
dialogue context one process gives it, and takes every N-th chunk of ``chunk`` rows (chunk *k*
belongs to process *k mod N*), written by the same loop to ``OUTPUT.part-R-of-N.partial``,
renamed ``OUTPUT.part-R-of-N`` when done; after a barrier the main process interleaves the
parts chunk by chunk back into input order as ``OUTPUT``. A killed job restarted with the same
command and the same number of processes re-scores nothing that was written.

One process never imports torch for this (`emotune.distributed` reads the launcher's
environment first), so an ONNX export or a distilled student labels a file on ONNX Runtime alone.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from emotune.distributed import is_main, rank, wait_for_everyone, world_size
from emotune.errors import EmotuneError
from emotune.inference.predict import Predictor
from emotune.inference.rows import DialogueColumns, Row, iter_rows
from emotune.storage import make_dirs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileResult:
    """What a `label_file` call did."""

    output: str
    rows: int
    resumed_from: int
    errors: int
    #: Seconds the main process spent merging the processes' parts (several processes only).
    merge_seconds: float | None = None


def label_file(
    predictor: Predictor,
    source: Path,
    target: Path,
    text_column: str = "text",
    chunk: int = 256,
    dialogue: DialogueColumns | None = None,
    encoding: str = "utf-8",
) -> FileResult:
    """Classifies every row of ``source`` into ``target`` (JSONL), in bounded memory, resumably,
    in this process or split between the launched processes (each returns the same result).

    Args:
        predictor: The run to predict with.
        source: A ``.csv``/``.tsv``, ``.jsonl`` or ``.txt`` file.
        target: The JSONL file to write, one line per input row.
        text_column: The text column of a table or JSONL file.
        chunk: Rows per forward batch group (and per synced write).
        dialogue: Columns that give each row its earlier dialogue turns as context.
        encoding: The source's text encoding (a spreadsheet's Latin-1 export: ``latin-1``).

    Raises:
        EmotuneError: For a finished target, a missing or unreadable source, a source without a
            named column, or parts left by another number of processes.
    """
    if target.is_dir():
        raise EmotuneError(f"{target}: a folder; output names the JSONL file to write", settings=("output",))
    if target.exists():
        raise EmotuneError(
            f"{target} already exists (finished); remove it or choose another output", settings=("output",)
        )
    make_dirs(target.parent)
    parts = world_size()
    if parts == 1:
        written, done, errors = label_rows(predictor, iter_rows(source, text_column, dialogue, encoding), target, chunk)
        return _said_if_empty(source, FileResult(str(target), written, done, errors))
    check_parts(target, parts)
    mine = my_rows(iter_rows(source, text_column, dialogue, encoding), chunk, rank(), parts)
    with predictor.scoring_alone():  # the rows are already split between the processes
        totals = _sum_over_processes(list(label_rows(predictor, mine, part_path(target, rank(), parts), chunk)))
    wait_for_everyone()
    started = time.perf_counter()
    if is_main():
        merged = merge_parts(target, chunk, parts)
        if merged != totals[0]:
            raise EmotuneError(f"merging {parts} parts gave {merged} rows, the processes wrote {totals[0]}")
    merge_s = round(time.perf_counter() - started, 3)
    wait_for_everyone()
    return _said_if_empty(source, FileResult(str(target), totals[0], totals[1], totals[2], merge_s))


def _said_if_empty(source: Path, result: FileResult) -> FileResult:
    """``result``, after a warning where the input had no row at all: an empty output is then
    no failure to be found later but a file (or a header) with nothing under it."""
    if result.rows == 0 and is_main():
        log.warning("%s: no rows to classify (an empty file?); %s is empty", source, result.output)
    return result


def label_rows(predictor: Predictor, rows: Iterator[Row], target: Path, chunk: int) -> tuple[int, int, int]:
    """The resumable write loop: ``rows`` into ``target`` by way of ``target.partial``, synced per
    chunk; returns (rows written in all, rows found done before, error rows)."""
    if target.is_file():  # a part finished earlier: only the merge was left
        return sum(1 for _ in target.open(encoding="utf-8")), 0, 0
    partial = target.with_name(target.name + ".partial")
    done = finished_rows(partial)
    # A resumed file is read from its start, so rows after the resume point keep their context.
    rest = islice(rows, done, None)
    try:
        written, errors = _write_blocks(predictor, rest, partial, done, chunk)
    except BaseException:
        # A run that failed before its first row (a bad column, a text that is not one) leaves
        # nothing to resume: an empty partial file would only be litter beside the input. (A
        # finished one may be empty: a process whose share of a short file is no row.)
        if partial.is_file() and partial.stat().st_size == 0:
            partial.unlink()
        raise
    os.replace(partial, target)
    return written, done, errors


def _write_blocks(predictor: Predictor, rows: Iterator[Row], partial: Path, done: int, chunk: int) -> tuple[int, int]:
    """Appends ``rows`` to ``partial`` chunk by chunk; returns (rows written in all, error rows)."""
    errors, written, parts = 0, done, world_size()
    started = time.perf_counter()
    with (
        partial.open("a", encoding="utf-8") as out,
        tqdm(unit="row", initial=done, disable=None if is_main() else True) as bar,
    ):
        while block := list(islice(rows, chunk)):
            lines, bad = predict_block(predictor, block)
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())  # a crash after this point never loses the chunk
            errors, written = errors + bad, written + len(block)
            bar.update(len(block))
            if parts > 1:
                rate = parts * (written - done) / (time.perf_counter() - started)
                bar.set_postfix_str(f"{parts} processes, ~{rate:.0f} rows/s")
    return written, errors


def finished_rows(partial: Path) -> int:
    """Counts the complete JSON lines of a partial output and cuts off a torn last line."""
    if not partial.is_file():
        return 0
    keep, count = 0, 0
    with partial.open("rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                json.loads(line)
            except ValueError:
                break
            keep, count = keep + len(line), count + 1
    os.truncate(partial, keep)
    return count


def predict_block(predictor: Predictor, block: list[Row]) -> tuple[str, int]:
    """JSON lines for one chunk, in input order; returns them and the number of error rows."""
    good = [r for r in block if r.error is None and r.text is not None]
    contexts = [list(r.context) for r in good] if any(r.context for r in good) else None
    preds = iter(predictor.predict([str(r.text) for r in good], contexts)) if good else iter(())
    lines = []
    for r in block:
        result = {"error": r.error} if r.error else next(preds).to_dict()
        record = {"row": r.row, "text": r.text, **result}
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines), sum(r.error is not None for r in block)


def part_path(target: Path, index: int, parts: int) -> Path:
    return target.with_name(f"{target.name}.part-{index}-of-{parts}")


def check_parts(target: Path, parts: int) -> None:
    """Refuses parts left by a run with another number of processes (they could not be merged).

    Raises:
        EmotuneError: Naming the other process count.
    """
    for other in target.parent.glob(f"{target.name}.part-*-of-*"):
        count = other.name.rsplit("-of-", 1)[-1].removesuffix(".partial")
        if count != str(parts):
            raise EmotuneError(
                f"{other} was written by a run with {count} processes; resume with {count} or remove "
                f"{target.name}.part-* to start again with {parts}"
            )


def my_rows(rows: Iterator[Row], chunk: int, index: int, parts: int) -> Iterator[Row]:
    """The rows of every ``parts``-th chunk of ``chunk`` rows, starting at chunk ``index``."""
    k = 0
    while block := list(islice(rows, chunk)):
        if k % parts == index:
            yield from block
        k += 1


def merge_parts(target: Path, chunk: int, parts: int) -> int:
    """Interleaves the parts chunk by chunk into ``target`` (input order); returns its rows."""
    files = [part_path(target, i, parts).open(encoding="utf-8") for i in range(parts)]
    tmp = target.with_name(target.name + ".merging")
    rows = 0
    try:
        with tmp.open("w", encoding="utf-8") as out:
            k, empty = 0, 0
            while empty < parts:  # every part runs out in turn once the input has
                lines = list(islice(files[k % parts], chunk))
                empty = empty + 1 if not lines else 0
                out.writelines(lines)
                rows += len(lines)
                k += 1
            out.flush()
            os.fsync(out.fileno())
    finally:
        for fh in files:
            fh.close()
    os.replace(tmp, target)
    for i in range(parts):
        part_path(target, i, parts).unlink()
    return rows


def _sum_over_processes(values: list[int]) -> list[int]:
    from accelerate.utils import gather_object

    gathered = gather_object([values])
    return [sum(v[i] for v in gathered) for i in range(len(values))]


def read_jsonl_rows(path: Path) -> list[dict[str, object]]:
    """The records of a prediction file (for checks and benchmarks)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
