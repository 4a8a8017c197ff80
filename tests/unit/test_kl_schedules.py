"""beta(t) schedules at given updates (hand-computed values)."""
import math

import pytest

from fairseq_bt_plugin.errors import BTUserError
from fairseq_bt_plugin.kl_schedules import (
    KL_SCHEDULES,
    cyclical_beta,
    kl_beta,
    linear_beta,
    sigmoid_beta,
)


def test_constant():
    assert [kl_beta("constant", s, 0.7) for s in (0, 10, 10 ** 6)] == [0.7, 0.7, 0.7]


def test_linear_warmup():
    assert [linear_beta(s, 2.0, 100) for s in (0, 25, 50, 100, 150)] == [0.0, 0.5, 1.0, 2.0, 2.0]
    assert linear_beta(0, 2.0, 0) == 2.0  # no warm-up: constant


def test_sigmoid():
    assert sigmoid_beta(50, 1.0, 100) == 0.5
    assert sigmoid_beta(0, 1.0, 100, steepness=10) == pytest.approx(1 / (1 + math.exp(5)), abs=1e-15)
    assert sigmoid_beta(100, 2.0, 100, steepness=10) == pytest.approx(2 / (1 + math.exp(-5)), abs=1e-15)
    assert sigmoid_beta(0, 1.0, 1, steepness=10 ** 4) == 0.0  # no overflow


def test_cyclical_fu_et_al():
    got = [cyclical_beta(s, 1.0, cycle=100, ratio=0.5) for s in (0, 25, 50, 99, 100, 125, 250)]
    assert got == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0]
    assert kl_beta("cyclical", 130, 2.0, cycle=40, ratio=0.25) == 2.0 * min(1.0, (10 / 40) / 0.25)
    assert kl_beta("cyclical", 125, 2.0, cycle=40, ratio=0.25) == 1.0


def test_dispatch_and_unknown_name():
    assert kl_beta("linear", 30, 1.0, warmup=60) == 0.5
    assert kl_beta("sigmoid", 30, 1.0, warmup=60) == 0.5
    with pytest.raises(BTUserError, match="choose one of constant, linear, sigmoid, cyclical"):
        kl_beta("exponential", 1, 1.0)
    assert KL_SCHEDULES == ("constant", "linear", "sigmoid", "cyclical")
