"""``emotune serve``: load a run and answer HTTP requests with uvicorn."""

from __future__ import annotations

from pathlib import Path

from emotune.errors import EmotuneError
from emotune.serve.settings import ServeSettings


def serve(run: str, host: str = "127.0.0.1", port: int = 8000, settings: ServeSettings | None = None) -> None:
    """Runs the service until interrupted.

    Raises:
        EmotuneError: If the serve extra is not installed or ``run`` is not a run directory.
    """
    try:
        import uvicorn

        from emotune.serve.app import create_app, describe_run
    except ImportError as err:
        raise EmotuneError(f"emotune serve needs the serve extra: pip install 'emotune[serve]' ({err.name})") from None
    from emotune.inference.predict import Predictor

    folder = Path(run)
    if not (folder / "config.yaml").is_file():
        raise EmotuneError(f"{folder}: not a run directory (no config.yaml)")
    settings = settings or ServeSettings()
    app = create_app(lambda: Predictor.load(folder), settings, describe_run(folder))
    uvicorn.run(app, host=host, port=port, log_level="info")
