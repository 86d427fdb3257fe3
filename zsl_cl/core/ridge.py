"""Ridge projection W_l from CNN features to one-hot labels of the seen classes."""

from __future__ import annotations

import torch

__all__ = ["fit_label_projection", "solve_ridge", "one_hot"]


def one_hot(labels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Return the (N, len(classes)) one-hot matrix of ``labels`` over the ordered ``classes``."""
    position = {c: i for i, c in enumerate(classes)}
    columns = torch.tensor([position[int(y)] for y in labels.tolist()], dtype=torch.long)
    encoded = torch.zeros(len(labels), len(classes), dtype=torch.float64)
    encoded[torch.arange(len(labels)), columns] = 1.0
    return encoded


def fit_label_projection(features: torch.Tensor, targets: torch.Tensor, strength: float) -> torch.Tensor:
    """Solve W_l = (FᵀF + strength·I)⁻¹ FᵀY in float64.

    features: (N, D) CNN features F; targets: (N, C) one-hot labels Y.
    Returns W_l of shape (D, C).
    """
    f = features.to(torch.float64)
    return solve_ridge(f.T @ f, f.T @ targets.to(torch.float64), strength)


def solve_ridge(gram: torch.Tensor, cross: torch.Tensor, strength: float) -> torch.Tensor:
    """Solve (gram + strength·I) W = cross, where gram = FᵀF (D, D) and cross = FᵀY (D, C).

    Taking the statistics lets a caller add a few samples to a cached FᵀF
    instead of recomputing it. A Cholesky solve is used because
    FᵀF + strength·I is symmetric positive definite for any strength > 0.
    """
    if strength <= 0:
        raise ValueError(f"invalid ridge strength {strength}: use a value > 0")
    regularised = gram.clone()
    regularised.diagonal().add_(strength)
    factor = torch.linalg.cholesky(regularised)
    return torch.cholesky_solve(cross, factor)  # (D, C)
