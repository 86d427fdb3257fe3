"""Ridge projection W_l from CNN features to one-hot labels of the seen classes."""

from __future__ import annotations

import torch

__all__ = ["fit_label_projection", "one_hot"]


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
    Returns W_l of shape (D, C). A Cholesky solve is used because FᵀF + strength·I
    is symmetric positive definite for any strength > 0.
    """
    if strength <= 0:
        raise ValueError(f"invalid ridge strength {strength}: use a value > 0")
    f = features.to(torch.float64)
    y = targets.to(torch.float64)
    gram = f.T @ f  # (D, D)
    gram.diagonal().add_(strength)
    factor = torch.linalg.cholesky(gram)
    return torch.cholesky_solve(f.T @ y, factor)  # (D, C)
