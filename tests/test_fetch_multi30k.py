"""The pipeline's download path (scripts/stages/fetch_multi30k.sh), served from a local HTTP
server laid out like upstream ``multi30k/dataset/data/{task1,task2}/raw/``: every file is
md5-checked, ``mono/`` is rebuilt exactly as ../shared/data/multi30k/README.md made it, and a
corrupted download is refused without leaving a finished-looking folder.

An optional extra (marker ``shared_data``): it serves the real files from
``$BT_SHARED_DATA/multi30k`` (Multi30K's licence keeps them out of the repository), and is
skipped, saying so, where that folder is absent."""
import functools
import gzip
import http.server
import os
import subprocess
import threading

import pytest

from conftest import ROOT, SHARED_DATA

SHARED = SHARED_DATA / "multi30k"
FETCH = ROOT / "scripts" / "stages" / "fetch_multi30k.sh"
MANIFEST = [line.split() for line in (ROOT / "scripts" / "multi30k.md5").read_text().splitlines()]

pytestmark = pytest.mark.shared_data("multi30k")


@pytest.fixture
def upstream(tmp_path):
    """A local copy of the upstream layout and the URL of a server for it."""
    site = tmp_path / "site"
    for _, rel in MANIFEST:
        task, name = rel.split("/")
        (site / task / "raw").mkdir(parents=True, exist_ok=True)
        (site / task / "raw" / name).symlink_to(SHARED / rel)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def fetch(dest, url):
    env = {**os.environ, "CORPUS": "", "DOWNLOAD_DIR": str(dest), "BASE_URL": url}
    return subprocess.run(["bash", str(FETCH)], env=env, capture_output=True, text=True)


def test_download_checks_md5_and_rebuilds_mono(upstream, tmp_path):
    _, url = upstream
    dest = tmp_path / "multi30k"
    out = fetch(dest, url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(dest) and (dest / ".complete").exists()
    assert len(list(dest.glob("task*/*.gz"))) == len(MANIFEST) == 22
    for lang, lines in (("de", 141_444), ("en", 115_548)):
        name = f"mono/task2_train.{lang}.dedup_notask1.gz"
        with gzip.open(dest / name) as mine, gzip.open(SHARED / name) as ref:
            built = mine.read()
            assert built == ref.read(), name  # the same recipe, the same corpus
            assert built.count(b"\n") == lines
    again = fetch(dest, "http://127.0.0.1:9/unreachable")  # finished: no network needed
    assert again.returncode == 0 and again.stdout.strip() == str(dest)


def test_corrupted_download_is_refused(upstream, tmp_path):
    site, url = upstream
    bad = site / "task1" / "raw" / "val.en.gz"
    bad.unlink()
    bad.write_bytes(gzip.compress(b"not the real captions\n"))
    dest = tmp_path / "multi30k"
    out = fetch(dest, url)
    assert out.returncode != 0
    assert f"{dest}/task1/val.en.gz: md5" in out.stderr and "expected" in out.stderr
    assert not (dest / ".complete").exists() and not (dest / "task1" / "val.en.gz").exists()
