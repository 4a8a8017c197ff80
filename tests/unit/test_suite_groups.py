"""make test runs the suite in two processes (pytest-xdist, ``--dist loadgroup``): the tests
of one group (conftest.xdist_group: each file's, or finished_run's) must share one process,
where their module and session fixtures are made once."""
import os
import re
import subprocess
import sys

from helpers import ROOT


def test_each_group_runs_in_one_process(tmp_path):
    files = ["tests/unit/test_kl_schedules.py", "tests/unit/test_vae_losses.py",
             "tests/unit/test_tagging.py"]
    # its own temporary folder: never the outer run's (--basetemp empties the folder first)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    p = subprocess.run([sys.executable, "-m", "pytest", "-v", "-n", "2", "--dist", "loadgroup",
                        "--no-loadscope-reorder", "-p", "no:cacheprovider",
                        f"--basetemp={tmp_path / 'inner'}", *files],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:]
    ran = re.findall(r"^\[(gw\d)\] .* PASSED (tests/\S+?)::\S+@(\S+)", p.stdout, re.M)
    workers = {}
    for worker, path, group in ran:
        assert group == path.split("/")[-1]
        workers.setdefault(group, set()).add(worker)
    assert sorted(workers) == sorted(f.split("/")[-1] for f in files), p.stdout[-3000:]
    assert all(len(w) == 1 for w in workers.values()), workers
    assert len(set().union(*workers.values())) == 2  # both processes worked
