"""KL weight schedules beta(t) for latent-variable training, as pure functions of the update.

* ``constant``: ``beta_max`` from the first update.
* ``linear``: linear warm-up from 0 to ``beta_max`` over ``warmup`` updates (Bowman et al. 2016).
* ``sigmoid``: logistic warm-up, ``beta_max / 2`` at ``warmup / 2`` updates, ``steepness``
  controls how sharp the step is (Bowman et al. 2016 use a logistic schedule).
* ``cyclical``: Fu et al. 2019, "Cyclical Annealing Schedule": the run is cut into cycles of
  ``cycle`` updates; in each, beta rises linearly from 0 to ``beta_max`` over the first
  ``ratio`` of the cycle and then stays at ``beta_max``.
"""
import math

from .errors import check

KL_SCHEDULES = ("constant", "linear", "sigmoid", "cyclical")


def constant_beta(step: int, beta_max: float) -> float:
    return beta_max


def linear_beta(step: int, beta_max: float, warmup: int) -> float:
    """0 at step 0, ``beta_max`` from step ``warmup`` on (``warmup <= 0``: constant)."""
    if warmup <= 0:
        return beta_max
    return beta_max * min(1.0, step / warmup)


def sigmoid_beta(step: int, beta_max: float, warmup: int, steepness: float = 10.0) -> float:
    """``beta_max / (1 + exp(-steepness * (step / warmup - 0.5)))``."""
    if warmup <= 0:
        return beta_max
    x = -steepness * (step / warmup - 0.5)
    if x > 700:  # exp overflow: beta is 0 to double precision
        return 0.0
    return beta_max / (1.0 + math.exp(x))


def cyclical_beta(step: int, beta_max: float, cycle: int, ratio: float = 0.5) -> float:
    """Fu et al. 2019: ``tau = (step mod cycle) / cycle``; ``beta_max * min(1, tau / ratio)``."""
    if cycle <= 0:
        return beta_max
    tau = (step % cycle) / cycle
    return beta_max * min(1.0, tau / ratio) if ratio > 0 else beta_max


def kl_beta(schedule: str, step: int, beta_max: float, warmup: int = 0, cycle: int = 0,
            ratio: float = 0.5, steepness: float = 10.0) -> float:
    """beta at update ``step`` (0-based: the number of updates already done)."""
    check(schedule in KL_SCHEDULES,
          f"unknown KL schedule {schedule!r}; choose one of {', '.join(KL_SCHEDULES)}")
    if schedule == "constant":
        return constant_beta(step, beta_max)
    if schedule == "linear":
        return linear_beta(step, beta_max, warmup)
    if schedule == "sigmoid":
        return sigmoid_beta(step, beta_max, warmup, steepness)
    return cyclical_beta(step, beta_max, cycle, ratio)
