"""The ridge projection W_l from features to one-hot labels."""

import numpy as np
import pytest
import torch

from zsl_cl.core.ridge import fit_label_projection, one_hot


def test_one_hot_uses_given_class_order():
    encoded = one_hot(torch.tensor([7, 3, 7]), [7, 3])
    assert encoded.tolist() == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]


def test_ridge_matches_closed_form():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(200, 12))
    y = np.eye(4)[rng.integers(0, 4, size=200)]
    expected = np.linalg.solve(f.T @ f + 50.0 * np.eye(12), f.T @ y)
    fitted = fit_label_projection(torch.from_numpy(f), torch.from_numpy(y), 50.0)
    assert fitted.shape == (12, 4)
    assert np.allclose(fitted.numpy(), expected, atol=1e-10)


def test_ridge_gradient_vanishes_at_solution():
    # The ridge objective ‖FW - Y‖² + s‖W‖² is minimised where Fᵀ(FW - Y) + sW = 0.
    rng = np.random.default_rng(1)
    f = torch.from_numpy(rng.normal(size=(100, 8)))
    y = torch.from_numpy(np.eye(3)[rng.integers(0, 3, size=100)])
    w = fit_label_projection(f, y, 5.0)
    gradient = f.T @ (f @ w - y) + 5.0 * w
    assert gradient.abs().max() < 1e-9


def test_ridge_handles_rank_deficient_features():
    # ReLU features contain dead units (all-zero columns); the ridge term keeps the solve defined.
    f = torch.zeros(50, 6, dtype=torch.float64)
    f[:, :2] = torch.randn(50, 2, dtype=torch.float64)
    y = one_hot(torch.randint(0, 3, (50,)), [0, 1, 2])
    w = fit_label_projection(f, y, 50.0)
    assert torch.isfinite(w).all()
    assert w[2:].abs().max() == 0


def test_ridge_rejects_nonpositive_strength():
    with pytest.raises(ValueError, match="ridge strength"):
        fit_label_projection(torch.ones(3, 2), torch.ones(3, 1), 0.0)
