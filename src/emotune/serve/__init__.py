"""HTTP prediction service (``pip install emotune[serve]``): FastAPI app over one `Predictor`."""

from emotune.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
