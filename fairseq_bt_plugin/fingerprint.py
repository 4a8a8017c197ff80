"""Cheap fingerprints of files: a finished stage records those of the files it was made from,
and a re-run (resume, merge, a cached conversion) checks that they are still the same."""
import hashlib
import os
from typing import Dict


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
