"""User-facing errors.

Every problem a user can cause (a missing file, a wrong column, an unknown label, a corrupt
checkpoint) is raised as `EmotuneError` with a one-line message; the CLI prints that
line and exits with status 2 instead of dumping a traceback.
"""


class EmotuneError(Exception):
    """An error caused by the user's input or environment, reported as one line."""
