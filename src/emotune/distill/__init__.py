"""Knowledge distillation: a trained LLM recogniser teaches a small encoder that predicts at encoder speed.

``emotune distill --run TEACHER --output STUDENT`` scores the training texts (and optional
unlabelled ones) with the teacher, trains the student on those soft labels mixed with the gold
ones, and writes a run directory that predicts, evaluates, serves and exports like any other.
"""

from emotune.distill.config import DistillConfig
from emotune.distill.run import distill, distill_config
from emotune.models.text_pairs import is_student

__all__ = ["DistillConfig", "distill", "distill_config", "is_student"]
