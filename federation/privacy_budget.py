"""The privacy guarantee a run under central differential privacy gives: its (ε, δ).

What is protected: everything one hospital contributes (its reviewed cases, any number of them), against
whoever receives the rounds' models, the hospitals and anyone a model is shared with. The coordinator
sees each node's update before the noise, so it is trusted, as central DP trusts its aggregator.

Each round (server_app.with_central_dp) clips every node's update to L2 norm C and adds Gaussian noise of
standard deviation z·C to their sum (z·C/n to the average of n replies; the number of replies is known to
every participant). Changing one hospital's cases changes its clipped update by at most 2C, so a round is a
Gaussian mechanism with sensitivity 2C: μ = 2/z in the terms of Gaussian differential privacy (Dong, Roth
and Su, 2019). A run of T rounds composes exactly to μ = 2·√T/z, and a μ-GDP mechanism is (ε, δ)-DP with
δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2) (Balle and Wang, 2018), tight for Gaussian noise; the ε given
is the least one for the configured δ. No amplification by sampling is counted: every hospital a run
takes is asked every round.

Not covered: the figures a round reports (loss, accuracy, case counts) and the node-side evaluation.
"""

import math

from scipy.special import log_ndtr, ndtr


def gaussian_mu(noise_multiplier: float, rounds: int) -> float:
    """μ of `rounds` rounds of noise `noise_multiplier` over updates clipped to C, per hospital."""
    return 2.0 * math.sqrt(rounds) / noise_multiplier


def delta_at(epsilon: float, mu: float) -> float:
    # e^ε·Φ(·) in log space: ε reaches hundreds for weak noise, where e^ε alone overflows.
    return float(ndtr(-epsilon / mu + mu / 2) - math.exp(epsilon + log_ndtr(-epsilon / mu - mu / 2)))


# Past this μ the closed form loses its precision (ε near μ²/2 is the difference of two such numbers), and
# no figure would mean anything: ε is infinite for all a reader needs to know.
MU_BEYOND_MEANING = 1e4


def epsilon_for(mu: float, delta: float) -> float:
    """The least ε for which a μ-GDP mechanism is (ε, δ)-DP (δ(ε) falls as ε grows)."""
    if not mu < MU_BEYOND_MEANING:
        return math.inf
    if delta_at(0.0, mu) <= delta:
        return 0.0
    low, high = 0.0, 1.0
    while delta_at(high, mu) > delta:
        low, high = high, high * 2
    for _ in range(100):
        middle = (low + high) / 2
        if delta_at(middle, mu) > delta:
            low = middle
        else:
            high = middle
    return high


def run_epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """ε at `delta` after `rounds` rounds of a run with `noise_multiplier` (z > 0)."""
    return epsilon_for(gaussian_mu(noise_multiplier, rounds), delta)


# Far below 1 over the number of hospitals a run can take, the units protected: a δ near that would allow
# a mechanism that publishes one hospital's cases outright.
DELTA = 1e-5


def run_guarantee(run) -> dict | None:
    """A run's guarantee over its planned rounds (one stopped early released fewer, so it holds); None
    without central DP. An ε beyond meaning is None: JSON has no infinity."""
    if not run.dp_noise_multiplier:
        return None
    epsilon = run_epsilon(run.dp_noise_multiplier, run.num_rounds, DELTA)
    return {"epsilon": epsilon if math.isfinite(epsilon) else None, "delta": DELTA, "rounds": run.num_rounds}
