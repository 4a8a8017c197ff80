"""pytest's side of the suite: the shared fixtures (a tiny real corpus, the committed Tatoeba
fr-en slice in tests/data/ binarized with fairseq; a tiny reverse model; one finished pipeline
run), built by the helpers package (tests/helpers/); the test tiers, one per folder
(:data:`helpers.TIERS`); pytest-xdist's groups."""
import pytest

from helpers import ROOT, SHARED_DATA, SRC, TESTS, TGT, TIERS, make_corpus, train_tiny
from helpers.pipeline import EXPORT, finish, pipeline

#: the longest groups of tests, started first when ``make test`` runs them side by side
#: (pytest-xdist ``--dist loadgroup``): the users of ``finished_run``, then whole files
HEAVY = ["finished_run", "test_pipeline.py", "test_transfer_study.py",
         "test_experiment_pipeline.py", "test_freezing.py", "test_bad_input.py",
         "test_distributed_cpu.py"]


def xdist_group(item) -> str:
    """The tests that share one costly fixture run in one process: those of ``finished_run``
    (a whole pipeline run), else each file's (its module fixtures)."""
    return "finished_run" if "finished_run" in item.fixturenames else item.path.name


@pytest.hookimpl(tryfirst=True)  # the groups before pytest-xdist reads them
def pytest_collection_modifyitems(config, items):
    """Mark every test with its folder's tier; skip the optional extra ``shared_data(FOLDER)``
    (tests that need ``$BT_SHARED_DATA/FOLDER``, e.g. Multi30K) where that folder is absent;
    group the tests for pytest-xdist, the longest groups first."""
    missing = set()
    order = {group: i for i, group in enumerate(HEAVY)}  # a stable sort: each file's own order
    items.sort(key=lambda item: order.get(xdist_group(item), len(HEAVY)))
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
        tier = item.path.parent.name
        if tier not in TIERS or item.path.parent.parent != TESTS:
            missing.add(str(item.path.relative_to(ROOT)))
            continue
        item.add_marker(tier)
        extra = item.get_closest_marker("shared_data")
        if extra and not (SHARED_DATA / extra.args[0]).is_dir():
            item.add_marker(pytest.mark.skip(
                reason=f"optional extra shared_data: {SHARED_DATA / extra.args[0]} not found"))
    if missing:
        raise pytest.UsageError(f"tests/conftest.py: not in a tier folder {TIERS}: "
                                f"{sorted(missing)}")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """500 bitext pairs, 300 "synthetic" pairs (other Tatoeba lines), valid 64, test 50,
    a joint sentencepiece model, and the fairseq-binarized data; synthetic weights file."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def reverse_model(corpus, tmp_path_factory):
    """A tiny TGT->SRC model (stock translation task) trained 30 updates on the bitext.

    At TINY_MODEL's lr 0.001 it would still emit little but "▁" alone (the most frequent
    piece of the 400-piece vocabulary on this French), which the generator drops as empty
    output (15 of 16 lines); at 0.005 its (poor) translations are words."""
    return train_tiny(corpus.bin, tmp_path_factory.mktemp("reverse"), ["--lr", "0.005"],
                      src=TGT, tgt=SRC)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One finished tiny pipeline run, read (never changed) by the test files that need one:
    :mod:`helpers.pipeline`'s experiment and settings, two rounds of iterative BT, the best
    system exported (EXPORT), the defaults
    otherwise; (WORK, its output)."""
    work = tmp_path_factory.mktemp("pipeline")
    return work, finish(pipeline(work, rounds=2, extra_env=EXPORT))
