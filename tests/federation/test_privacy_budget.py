"""The (ε, δ) of a run under central differential privacy (federation/privacy_budget.py)."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from federation.privacy_budget import DELTA, delta_at, epsilon_for, gaussian_mu, run_epsilon


def delta_by_privacy_loss(epsilon: float, mu: float) -> float:
    """δ(ε) of a Gaussian mechanism from its privacy-loss distribution, independently of the closed form:
    with the output on one side ~ N(μ, 1) against N(0, 1), the loss at x is μx − μ²/2, and
    δ(ε) = E[(1 − e^(ε − loss))⁺]."""
    def integrand(x):
        loss = mu * x - mu * mu / 2
        return stats.norm.pdf(x, loc=mu) * max(0.0, 1.0 - math.exp(epsilon - loss))
    start = (epsilon + mu * mu / 2) / mu  # where the loss passes ε
    value, _ = integrate.quad(integrand, start, np.inf, epsabs=1e-14, epsrel=1e-10)
    return value


@pytest.mark.parametrize("mu", [0.3, 1.0, 2.5, 6.0])
@pytest.mark.parametrize("epsilon", [0.1, 1.0, 4.0])
def test_the_closed_form_matches_the_privacy_loss_distribution(mu, epsilon):
    assert delta_at(epsilon, mu) == pytest.approx(delta_by_privacy_loss(epsilon, mu), rel=1e-6, abs=1e-15)


@pytest.mark.parametrize("mu", [0.05, 1.0, 8.9])
def test_epsilon_is_the_least_that_reaches_delta(mu):
    epsilon = epsilon_for(mu, DELTA)
    assert delta_at(epsilon, mu) <= DELTA
    assert delta_at(epsilon * 0.999, mu) > DELTA


def test_noise_equal_to_the_sensitivity_is_tighter_than_the_classical_bound():
    # The classical Gaussian mechanism (Dwork and Roth, theorem A.1) would state ε = √(2 ln(1.25/δ)) = 4.84
    # for σ = Δ; the exact conversion gives less.
    assert epsilon_for(1.0, 1e-5) == pytest.approx(4.38, abs=0.01)
    assert epsilon_for(1.0, 1e-5) < math.sqrt(2 * math.log(1.25 / 1e-5))


def test_a_round_of_clipped_updates_has_sensitivity_twice_the_norm_and_rounds_compose_by_root():
    assert gaussian_mu(2.0, 1) == pytest.approx(1.0)
    assert gaussian_mu(2.0, 16) == pytest.approx(4.0)
    assert run_epsilon(2.0, 1, 1e-5) == pytest.approx(epsilon_for(1.0, 1e-5))


def test_more_noise_or_fewer_rounds_give_a_smaller_epsilon_and_weak_noise_does_not_overflow():
    assert run_epsilon(10.0, 5, DELTA) < run_epsilon(5.0, 5, DELTA) < run_epsilon(5.0, 20, DELTA)
    # A noise multiplier near 0 protects nearly nothing: a huge ε, not an error.
    assert math.isfinite(run_epsilon(0.01, 200, DELTA)) and run_epsilon(0.01, 200, DELTA) > 1e6
    assert run_epsilon(1e-10, 3, DELTA) == math.inf


def test_a_run_stored_with_noise_beyond_meaning_is_shown_without_a_figure():
    from federation.models import FederatedRun
    from federation.privacy_budget import run_guarantee

    assert run_guarantee(FederatedRun(dp_noise_multiplier=1e-12, dp_clipping_norm=1.0, num_rounds=3)) == {
        "epsilon": None, "delta": DELTA, "rounds": 3}
    assert run_guarantee(FederatedRun(dp_noise_multiplier=None, num_rounds=3)) is None
    assert run_epsilon(100.0, 1, DELTA) < 0.1
