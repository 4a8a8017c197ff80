"""One exception type for user errors, reported by the command-line tools as one line."""


class BTUserError(ValueError):
    """Bad input, data or flags. The message names the file (and line) or flag at fault."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BTUserError(message)
