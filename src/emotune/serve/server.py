"""``emotune serve``: load a run and answer HTTP requests with uvicorn."""

from __future__ import annotations

from emotune.errors import EmotuneError
from emotune.models.generalist import DEFAULT_LABELS, is_shipped, resolve_run
from emotune.rundir import load_run
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
    language: str | None = None,
    frozen_backbone: bool = False,
    corpus: str | None = None,
) -> None:
    """Runs the service until interrupted: a run directory, or ``labels`` given at start on the
    shipped generalist (``run``'s adapter, or the frozen ``model``); neither: the shipped
    generalist with Ekman's emotions and neutral.

    Raises:
        EmotuneError: If the serve extra is not installed or ``run`` is not a run directory.
    """
    try:
        import uvicorn

        from emotune.serve.app import create_app, describe_run
    except ImportError as err:
        raise EmotuneError(f"emotune serve needs the serve extra: pip install 'emotune[serve]' ({err.name})") from None
    from emotune.inference.predict import Predictor

    check_address(host, port)
    settings = settings or ServeSettings()
    if labels is not None or (run is None and not model and not frozen_backbone and is_shipped()):
        from emotune.inference.call_time import default_adapter, describe_call_time, parse_labels

        names = parse_labels(labels or DEFAULT_LABELS)
        adapter = resolve_run(default_adapter(model, run, frozen_backbone))
        about = describe_call_time(names, model, adapter)

        def load() -> Predictor:
            return Predictor.zero_shot(names, model, adapter, task=task, language=language)

        app = create_app(load, settings, about)
    else:
        if not run:
            raise EmotuneError("give --labels L1,L2,... (with --model or --frozen-backbone), or --run RUN")
        folder = resolve_run(run)
        assert folder is not None
        load_run(folder)  # one line for a folder that is not a run, before the server starts
        app = create_app(lambda: Predictor.load(folder, corpus=corpus), settings, describe_run(folder))
    uvicorn.run(app, host=host, port=port, log_level="info")


def check_address(host: str, port: int) -> None:
    """Binds ``host:port`` once and lets it go, so a port in use or out of range is one line
    before any model loads (uvicorn would say so only after loading it, or with a traceback).

    Raises:
        EmotuneError: When the address cannot be listened on.
    """
    import socket

    if not 0 <= port <= 65535:
        raise EmotuneError(f"port must be in 0-65535, got {port}", settings=("port",))
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        why = str(err.strerror or err).split(" (while attempting")[0]  # the address is in the message already
        raise EmotuneError(f"cannot listen on {host}:{port} ({why})", settings=("port",)) from None
