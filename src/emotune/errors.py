"""User-facing errors.

Every problem a user can cause (a missing file, a wrong column, an unknown label, a corrupt
checkpoint) is raised as `EmotuneError` with a one-line message; the CLI prints that
line and exits with status 2 instead of dumping a traceback.
"""


class EmotuneError(Exception):
    """An error caused by the user's input or environment, reported as one line.

    A message about a setting names it as the library knows it (``min_confidence``,
    ``speaker_column``) and lists it in ``settings``; the CLI shows its own flag in its place
    (``--min-confidence``), so the library's wording stays right for Python and HTTP callers.
    """

    def __init__(self, message: str, *, settings: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.settings = settings


def first_line(err: BaseException) -> str:
    """The first line of a third-party error's message (its type's name when it has none): what a
    one-line `EmotuneError` quotes of it."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
