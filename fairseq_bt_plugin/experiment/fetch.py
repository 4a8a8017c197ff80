"""Corpus files of an experiment: a local path, or a URL downloaded once into a cache.

A download goes to ``CACHE_DIR/MD5/NAME.partPID`` and is moved to ``CACHE_DIR/MD5/NAME`` only
when its md5 is the one the experiment file gives: a cached file is complete and right.
"""
import hashlib
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request

from ..errors import BTUserError, check
from .config import FileConfig


def md5sum(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_md5(path: str, md5: str, at: str, what: str) -> None:
    got = md5sum(path)
    check(got == md5, f"{at}: {what}: md5 {got}, expected {md5}")


def local_file(f: FileConfig, data_dir: str, cache_dir: str, at: str) -> str:
    """The local path of file ``f`` (``at``: "EXPERIMENT: KEY[i]", for errors)."""
    if f.path:
        path = os.path.join(data_dir, os.path.expanduser(f.path))
        if os.path.isfile(path):
            if f.md5:
                _check_md5(path, f.md5, at, path)
            return path
        check(bool(f.url), f"{at}: {path}: file not found")
    name = os.path.basename(urllib.parse.urlparse(f.url).path) or "download"
    dest = os.path.join(cache_dir, f.md5, name)
    if os.path.isfile(dest):
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    part = f"{dest}.part{os.getpid()}"
    try:
        try:
            with urllib.request.urlopen(f.url, timeout=60) as r, open(part, "wb") as out:
                shutil.copyfileobj(r, out)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            raise BTUserError(f"{at}: {f.url}: download failed ({reason})") from None
        _check_md5(part, f.md5, at, f"{f.url} (download corrupted, or a wrong md5)")
        os.replace(part, dest)
    finally:
        if os.path.exists(part):
            os.remove(part)
    return dest
