"""A run, start to end, one flow for one corpus and for a mix of several: prepare the run
directory, select the data, build the recogniser, train it when its method trains, calibrate,
evaluate, and write every run file (`emotune.pipeline.flow`).

What differs between one corpus (`emotune.pipeline.one_corpus`) and a mix
(`emotune.pipeline.mixture`: one adapter, each example scored among its own corpus's labels) is a
`Job`; the steps and their order are the flow's, so nothing one does can be missing from the other.

Used by ``emotune train`` / ``evaluate``, the quickstart and the benchmark harness. The loop
itself lives in `emotune.training.trainer`.
"""

from emotune.pipeline.flow import Job, finished_training, run
from emotune.pipeline.saved import evaluate_saved, trained_data

__all__ = ["Job", "evaluate_saved", "finished_training", "run", "trained_data"]
