"""emotune: customise general large language models into specialised emotion recognisers."""

from emotune.errors import EmotuneError

__version__ = "0.1.0"
__all__ = ["EmotuneError", "Prediction", "Predictor", "__version__"]


def __getattr__(name: str) -> object:
    # Import torch-heavy parts lazily so `emotune --help` and `import emotune` stay fast.
    if name in ("Predictor", "Prediction"):
        from emotune import predict

        return getattr(predict, name)
    raise AttributeError(name)
