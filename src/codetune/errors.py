"""The one error class meant for users: the CLI prints it on one line, without a traceback."""


class CodetuneError(Exception):
    """A user-facing error. The message names the file, the field and, where possible, the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
