"""emotune: customise general large language models into specialised emotion recognisers."""

import warnings

from emotune.errors import EmotuneError

# PEFT calls a transformers property that warns about its own rename on every model load; the
# warning is about transformers' internals, not about anything an emotune user can change.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

__version__ = "0.1.0"
__all__ = ["EmotuneError", "Prediction", "Predictor", "__version__"]


def __getattr__(name: str) -> object:
    # Import torch-heavy parts lazily so `emotune --help` and `import emotune` stay fast.
    if name in ("Predictor", "Prediction"):
        from emotune.inference import predict

        return getattr(predict, name)
    raise AttributeError(name)
