"""One file predicted by several processes (``accelerate launch`` or ``torchrun``, any number of
processes and machines): every process labels its own rows, the main process merges.

Every process streams the whole input, so each row gets exactly the dialogue context a
one-process run gives it (context comes from the rows before it, whichever process scores
them), and takes every N-th chunk of ``chunk`` rows: chunk *k* belongs to process *k mod N*.
Each process writes its rows to ``OUTPUT.part-R-of-N.partial`` (flushed and synced per block,
resumable like a one-process run), renamed ``OUTPUT.part-R-of-N`` when done; after a barrier the
main process interleaves the parts chunk by chunk back into input order as ``OUTPUT`` and removes
them. A killed job restarted with the same command and the same number of processes re-scores
nothing that was written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from emotune.distributed import is_main, local_work, rank, wait_for_everyone, world_size
from emotune.errors import EmotuneError
from emotune.inference.predict import Predictor
from emotune.inference.predict_files import (
    DialogueColumns,
    FileResult,
    Row,
    finished_rows,
    iter_rows,
    predict_block,
)


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


def predict_my_part(
    predictor: Predictor, source: Path, target: Path, text_column: str, chunk: int, dialogue: DialogueColumns | None
) -> tuple[int, int, int]:
    """Scores this process's rows into its part file; returns (rows, rows done before, errors)."""
    index, parts = rank(), world_size()
    done_file = part_path(target, index, parts)
    if done_file.is_file():  # finished earlier: only the merge was left
        return sum(1 for _ in done_file.open(encoding="utf-8")), 0, 0
    partial = done_file.with_name(done_file.name + ".partial")
    done = finished_rows(partial)
    rows = islice(my_rows(iter_rows(source, text_column, dialogue), chunk, index, parts), done, None)
    errors, written = 0, done
    started = time.perf_counter()
    with (
        local_work(),
        partial.open("a", encoding="utf-8") as out,
        tqdm(unit="row", initial=done, disable=None if is_main() else True) as bar,
    ):
        while block := list(islice(rows, chunk)):
            lines, bad = predict_block(predictor, block)
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())
            errors, written = errors + bad, written + len(block)
            bar.update(len(block))
            bar.set_postfix_str(
                f"{parts} processes, ~{parts * (written - done) / (time.perf_counter() - started):.0f} rows/s"
            )
    os.replace(partial, done_file)
    return written, done, errors


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


def predict_file_sharded(
    predictor: Predictor,
    source: Path,
    target: Path,
    text_column: str = "text",
    chunk: int = 256,
    dialogue: DialogueColumns | None = None,
) -> FileResult:
    """`emotune.inference.predict_files.predict_file` over ``world_size()`` processes; every
    process returns the same result (rows and errors summed over processes)."""
    if target.exists():
        raise EmotuneError(f"{target} already exists (finished); remove it or choose another --output")
    target.parent.mkdir(parents=True, exist_ok=True)
    parts = world_size()
    check_parts(target, parts)
    written, done, errors = predict_my_part(predictor, source, target, text_column, chunk, dialogue)
    totals = _sum_over_processes([written, done, errors])
    wait_for_everyone()
    started = time.perf_counter()
    if is_main():
        merged = merge_parts(target, chunk, parts)
        if merged != totals[0]:
            raise EmotuneError(f"merging {parts} parts gave {merged} rows, the processes wrote {totals[0]}")
    merge_s = round(time.perf_counter() - started, 3)
    wait_for_everyone()
    return FileResult(str(target), totals[0], totals[1], totals[2], merge_s)


def _sum_over_processes(values: list[int]) -> list[int]:
    from accelerate.utils import gather_object

    gathered = gather_object([values])
    return [sum(v[i] for v in gathered) for i in range(len(values))]


def read_jsonl_rows(path: Path) -> list[dict[str, object]]:
    """The records of a prediction file (for checks and benchmarks)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
