"""The SAE solve: residuals, and agreement with the explicit-S formulation."""

import numpy as np
import pytest
import scipy.linalg
import torch

from zsl_cl.core.sae import relative_residual, solve_sae


def scipy_solver(a, b, c):
    return torch.from_numpy(scipy.linalg.solve_sylvester(a.numpy(), b.numpy(), c.numpy()))


def naive_sae(x, labels, k, lam, refinements, seed):
    # The method as written: S is materialised (k, N) and every product is formed from it.
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(int(labels.max()) + 1, k, generator=generator, dtype=torch.float64)
    s = codes[labels].T
    xt = x.T
    for _ in range(refinements + 1):
        w = scipy_solver(s @ s.T, lam * xt @ xt.T, (1 + lam) * s @ xt.T)
        s = w @ xt
    return w


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 6, size=300))
    centres = torch.from_numpy(rng.normal(size=(6, 6)))
    x = centres[labels] + 0.3 * torch.from_numpy(rng.normal(size=(300, 6)))
    return x, labels


def test_sae_matches_explicit_formulation(problem):
    x, labels = problem
    fast = solve_sae(x, labels, k=16, lam=1.0, refinements=5, solver=scipy_solver, generator=torch.Generator().manual_seed(3))
    slow = naive_sae(x, labels, k=16, lam=1.0, refinements=5, seed=3)
    assert torch.allclose(fast.w, slow, rtol=1e-8, atol=1e-10)


def test_sae_residuals_small(problem):
    x, labels = problem
    result = solve_sae(x, labels, k=32, lam=1.0, refinements=25, solver=scipy_solver, generator=torch.Generator().manual_seed(0))
    assert len(result.residuals) == 26
    assert max(result.residuals) < 1e-10


def test_sae_solution_satisfies_equation(problem):
    x, labels = problem
    result = solve_sae(x, labels, k=8, lam=0.5, refinements=0, solver=scipy_solver, generator=torch.Generator().manual_seed(1))
    codes = torch.randn(6, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = codes[labels].T
    a, b, c = s @ s.T, 0.5 * x.T @ x, 1.5 * s @ x
    assert relative_residual(a, b, c, result.w) < 1e-10


def test_sae_encode_shape(problem):
    x, labels = problem
    result = solve_sae(x, labels, k=8, lam=1.0, refinements=1, solver=scipy_solver, generator=torch.Generator().manual_seed(0))
    assert result.w.shape == (8, 6)
    assert result.encode(x).shape == (300, 8)


def test_sae_inaccurate_solve_raises(problem):
    x, labels = problem

    def bad_solver(a, b, c):
        return torch.zeros_like(c)

    with pytest.raises(ValueError, match="relative residual"):
        solve_sae(x, labels, k=8, lam=1.0, refinements=0, solver=bad_solver, generator=torch.Generator())


def test_sae_nan_features_raise(problem):
    x, labels = problem
    x = x.clone()
    x[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        solve_sae(x, labels, k=8, lam=1.0, refinements=0, solver=scipy_solver, generator=torch.Generator())


@pytest.mark.parametrize("k, lam", [(0, 1.0), (8, -0.5)])
def test_sae_invalid_settings(problem, k, lam):
    x, labels = problem
    with pytest.raises(ValueError):
        solve_sae(x, labels, k=k, lam=lam, refinements=0, solver=scipy_solver, generator=torch.Generator())
