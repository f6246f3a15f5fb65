"""``emotune serve``: load a run and answer HTTP requests with uvicorn."""

from __future__ import annotations

from pathlib import Path

from emotune.errors import EmotuneError
from emotune.serve.settings import ServeSettings


def serve(
    run: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServeSettings | None = None,
    *,
    labels: str | None = None,
    model: str | None = None,
    task: str | None = None,
) -> None:
    """Runs the service until interrupted: a run directory, or ``labels`` given at start on the
    frozen ``model`` (or on ``run``'s adapter).

    Raises:
        EmotuneError: If the serve extra is not installed or ``run`` is not a run directory.
    """
    try:
        import uvicorn

        from emotune.serve.app import create_app, describe_run
    except ImportError as err:
        raise EmotuneError(f"emotune serve needs the serve extra: pip install 'emotune[serve]' ({err.name})") from None
    from emotune.inference.predict import Predictor

    settings = settings or ServeSettings()
    if labels is not None:
        from emotune.inference.call_time import describe_call_time, parse_labels

        names = parse_labels(labels)
        about = describe_call_time(names, model, run)
        app = create_app(lambda: Predictor.zero_shot(names, model, run, task=task), settings, about)
    else:
        if not run:
            raise EmotuneError("give --run RUN, or --labels L1,L2,... to serve without one")
        folder = Path(run)
        if not (folder / "config.yaml").is_file():
            raise EmotuneError(f"{folder}: not a run directory (no config.yaml)")
        app = create_app(lambda: Predictor.load(folder), settings, describe_run(folder))
    uvicorn.run(app, host=host, port=port, log_level="info")
