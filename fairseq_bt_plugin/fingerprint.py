"""Cheap fingerprints of files: a finished stage records those of the files it was made from,
and a re-run (resume, merge, a cached conversion) checks that they are still the same."""
import hashlib
import os
from typing import Dict, Optional


def fingerprint(path: str, sample: int = 1 << 16) -> Dict:
    """What identifies the contents of the file ``path`` cheaply: size, modification time and
    a hash of its first and last ``sample`` bytes."""
    st = os.stat(path)
    h = hashlib.sha1()
    with open(path, "rb") as f:
        h.update(f.read(sample))
        f.seek(max(st.st_size - sample, 0))
        h.update(f.read(sample))
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sample_sha1": h.hexdigest()}


def same_contents(a: Dict, b: Dict) -> bool:
    """Fingerprints of copies of one file (on another machine: other path and time)."""
    return (a["size"], a["sample_sha1"]) == (b["size"], b["sample_sha1"])


def content_digest(path: str, cache: Optional[Dict[str, Dict]] = None) -> str:
    """SHA-256 of the contents of the file ``path``, or of a folder: of its files' relative
    paths and contents, every file below it in sorted order but its logs (``*.log``: where
    and when, not what, e.g. fairseq-preprocess's ``preprocess.log``). ``cache`` (path ->
    size, mtime and digest) spares reading a file again whose size and modification time did
    not change."""
    if os.path.isdir(path):
        h = hashlib.sha256()
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(f for f in files if not f.endswith(".log")):
                p = os.path.join(root, name)
                h.update(f"{os.path.relpath(p, path)}\0{content_digest(p, cache)}\n".encode())
        return h.hexdigest()
    st = os.stat(path)
    key = os.path.abspath(path)
    known = (cache or {}).get(key)
    if known and (known["size"], known["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
        return known["sha256"]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    if cache is not None:
        cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest()}
    return h.hexdigest()
