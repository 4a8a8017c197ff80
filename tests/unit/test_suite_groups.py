"""The suite's layout. Every test file lives in one tier folder (tests/unit, tests/integration,
tests/system: its tests' marker), under a name no other test file has (pytest imports them by
their folder, as top-level modules); test modules share code through tests/helpers, never by
importing each other. make test runs the suite in two processes (pytest-xdist, ``--dist
loadgroup``): the tests of one group (conftest.xdist_group: each file's, or finished_run's)
must share one process, where their module and session fixtures are made once."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, TESTS, TIERS


def suite_files(tests: Path):
    """Every test file under ``tests``, at any depth."""
    return sorted(tests.rglob("test_*.py"))


def misplaced(tests: Path):
    """Test files outside the tier folders, and files of a tier folder that are not tests
    (shared code belongs in tests/helpers)."""
    outside = [p for p in suite_files(tests)
               if p.parent.parent != tests or p.parent.name not in TIERS]
    strays = [p for tier in TIERS for p in (tests / tier).rglob("*.py")
              if p.parent != tests / tier or not p.name.startswith("test_")]
    return [str(p.relative_to(tests)) for p in outside + strays]


def imports_of(path: Path):
    """The top-level module names ``path`` imports, anywhere in it (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def cross_imports(tests: Path):
    """(importer, test module or conftest) for every import of a test module, or of conftest
    (fixtures come as arguments), by any Python file of tests/."""
    forbidden = {p.stem for p in suite_files(tests)} | {"conftest"}
    return sorted((str(path.relative_to(tests)), name) for path in tests.rglob("*.py")
                  for name in imports_of(path) & forbidden)


def test_every_test_file_lives_in_one_tier_folder():
    assert misplaced(TESTS) == []
    assert {p.parent.name for p in suite_files(TESTS)} == set(TIERS)


def test_test_file_names_are_unique():
    names = [p.name for p in suite_files(TESTS)]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_no_test_module_imports_another():
    assert cross_imports(TESTS) == []


def test_the_checks_find_a_misplaced_file_and_an_import_between_tests(tmp_path):
    for folder in ("unit", "system", "helpers"):
        (tmp_path / folder).mkdir()
    (tmp_path / "unit" / "test_a.py").write_text("from helpers import SRC\n")
    (tmp_path / "unit" / "shared.py").write_text("")
    (tmp_path / "system" / "test_b.py").write_text("def test_b():\n    from test_a import SRC\n")
    (tmp_path / "test_c.py").write_text("import test_a.x\n")
    (tmp_path / "helpers" / "__init__.py").write_text("from conftest import ROOT\n")
    assert misplaced(tmp_path) == ["test_c.py", "unit/shared.py"]
    assert cross_imports(tmp_path) == [("helpers/__init__.py", "conftest"),
                                       ("system/test_b.py", "test_a"), ("test_c.py", "test_a")]


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
