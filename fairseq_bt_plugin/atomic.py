"""Output files that exist only when complete: written under a temp name, moved into place.

A failure (disk full, file size limit, a killed process) leaves the previous file, if any,
byte-identical and no half-written one under the final name; an OSError names the final path.
"""
import contextlib
import os
from typing import Dict, Iterable

from .errors import naming


def temp_name(path: str) -> str:
    return f"{path}.tmp{os.getpid()}"


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w"):
    """Write ``path`` through a temp file that replaces it only if the block succeeds."""
    tmp = temp_name(path)
    try:
        with naming(path):
            with open(tmp, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
                yield f
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def replace_all(staged: Dict[str, str]) -> None:
    """Move each finished temp file (value) to its final path (key)."""
    for final, tmp in staged.items():
        os.replace(tmp, final)


def remove_files(paths: Iterable[str]) -> None:
    for p in paths:
        if os.path.exists(p):
            os.remove(p)
