"""One exception type for user errors, reported by the command-line tools as one line
(:func:`run_reporting_user_errors`; standard library only).

Also the one-line forms of two other failures the user must act on: an output that cannot be
written (disk full, file size limit, read-only or unwritable folder) and a checkpoint file
that cannot be loaded (truncated, or not a checkpoint at all).
"""
import contextlib
import errno
import sys
from typing import Callable, Optional


class BTUserError(ValueError):
    """Bad input, data or flags. The message names the file (and line) or flag at fault."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BTUserError(message)


#: OSErrors caused by the machine or by a path the user gave, not by a bug
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES,
                      errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.ENOENT, errno.EEXIST}


def os_error_message(e: OSError) -> Optional[str]:
    """``PATH: No space left on device`` for an OSError the user must act on; None for others
    (left to show their traceback)."""
    if isinstance(e, FileNotFoundError) and e.errno is None:
        return str(e)  # raised with a message of its own (fairseq: "Dataset not found: ...")
    if e.errno not in ENVIRONMENT_ERRNOS:
        return None
    paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p)  # copy: source, dest
    return f"{paths}: {e.strerror}" if paths else e.strerror


@contextlib.contextmanager
def naming(path: str):
    """Name ``path`` in an OSError raised inside the block that names no file (``write``
    failing with ENOSPC or EFBIG names none)."""
    try:
        yield
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror, path) from e
        raise


def checkpoint_error(path: str, e: Exception) -> BTUserError:
    """The error for a checkpoint file that torch or fairseq cannot load."""
    if isinstance(e, BTUserError):
        return e
    first = (str(e).splitlines() or [""])[0].split(". ")[0]
    return BTUserError(f"{path}: not a fairseq checkpoint, or truncated ({type(e).__name__}: "
                       f"{first})")


def user_error_message(e: Exception) -> Optional[str]:
    """The one-line message of an error the user must act on: a :class:`BTUserError` (bad
    input, flags, an unloadable checkpoint), an output that cannot be written or an input that
    is missing (``OSError``: disk full, file size limit, read-only or unwritable folder; the
    message names the path); None for every other error (a bug: its traceback is shown)."""
    if isinstance(e, BTUserError):
        return str(e)
    if isinstance(e, OSError):
        return os_error_message(e)
    return None


def run_reporting_user_errors(main: Callable[[], None], prog: str) -> None:
    """Run ``main``; report a user error (:func:`user_error_message`) as
    ``prog: error: message`` and exit 2. (Importing the plugin reports uncaught ones the same
    way, for fairseq's own commands: ``compat.patch_excepthook``.)"""
    try:
        main()
        return
    except Exception as e:
        message = user_error_message(e)
        if message is None:
            raise
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(2)
