"""Semantic auto-encoder: a Sylvester solve for the encoder W, refined by re-encoding."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zsl_cl.protocols import Solver

__all__ = ["SAEResult", "solve_sae", "relative_residual"]

# A solve whose relative residual exceeds this is reported as failed rather than used.
MAX_RELATIVE_RESIDUAL = 1e-6


@dataclass
class SAEResult:
    """The fitted encoder W (k, d) and the relative residual of each solve."""

    w: torch.Tensor
    residuals: list[float]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, d) inputs to (N, k) latent codes: z = W x for each row x."""
        return x.to(self.w.dtype) @ self.w.T


def relative_residual(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> float:
    """Return ‖AW + WB − C‖_F / ‖C‖_F."""
    return float(torch.linalg.norm(a @ w + w @ b - c) / torch.linalg.norm(c))


def solve_sae(
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    k: int,
    lam: float,
    refinements: int,
    solver: Solver,
    generator: torch.Generator,
) -> SAEResult:
    """Fit W for inputs x (N, d) whose labels (N,) index classes 0..C-1.

    Every class gets a random Gaussian code in R^k, and S (k, N) starts as the
    code of each sample's class. Then ``A W + W B = C`` is solved with
    A = S Sᵀ, B = λ X Xᵀ, C = (1+λ) S Xᵀ, and refined ``refinements`` times by
    setting S = W X and solving again.
    """
    if k <= 0:
        raise ValueError(f"invalid latent size k={k}: use k >= 1")
    if lam < 0:
        raise ValueError(f"invalid lambda {lam}: use lambda >= 0")
    x = x.to(torch.float64)  # (N, d)
    labels = labels.to(x.device)
    num_classes = int(labels.max()) + 1
    codes = torch.randn(num_classes, k, generator=generator, dtype=torch.float64).to(x.device)  # (C, k)

    # Every product with S reduces to d x d or C x d statistics of X, so N
    # enters once. With S = codes[labels]ᵀ: S Sᵀ = codesᵀ diag(n) codes and
    # S Xᵀ = codesᵀ M, where M (C, d) holds per-class sums of x. After a
    # refinement S = W X, so S Sᵀ = W G Wᵀ and S Xᵀ = W G with G = X Xᵀ.
    gram = x.T @ x  # (d, d): G = X Xᵀ
    counts = torch.bincount(labels, minlength=num_classes).to(torch.float64)  # (C,)
    class_sums = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, device=x.device).index_add_(0, labels, x)  # (C, d)
    a = codes.T @ (counts[:, None] * codes)  # (k, k)
    sx = codes.T @ class_sums  # (k, d)

    b = lam * gram  # (d, d), the same for every refinement
    residuals: list[float] = []
    for _ in range(refinements + 1):
        c = (1.0 + lam) * sx  # (k, d)
        w = solver(a, b, c)  # (k, d)
        residuals.append(_checked_residual(a, b, c, w))
        sx = w @ gram  # S Xᵀ with S = W X
        a = sx @ w.T  # S Sᵀ = W G Wᵀ
    return SAEResult(w=w, residuals=residuals)


def _checked_residual(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, w: torch.Tensor) -> float:
    if not torch.isfinite(w).all():
        raise ValueError("the Sylvester solve returned NaN or Inf: check the features for NaN/Inf or raise lambda")
    residual = relative_residual(a, b, c, w)
    if residual > MAX_RELATIVE_RESIDUAL:
        raise ValueError(
            f"the Sylvester solve is inaccurate (relative residual {residual:.2e} > {MAX_RELATIVE_RESIDUAL:.0e}): "
            "the system is singular or badly conditioned; raise lambda or try --solver scipy"
        )
    return residual
