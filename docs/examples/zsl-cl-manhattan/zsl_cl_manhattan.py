"""The ``manhattan`` latent distance for zsl-cl: a sample scores −‖z − r‖₁ against each reference r."""

from __future__ import annotations

import torch

from zsl_cl.hookspecs import hookimpl

__all__ = ["ManhattanDistance", "register_distances"]


class ManhattanDistance:
    """Negative L1 distance between latent codes, so higher scores mean closer references."""

    def fit(self, latents: torch.Tensor, labels: torch.Tensor) -> None:
        """Keep nothing: the L1 distance needs no statistics from the base classes."""

    def scores(self, samples: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """Return the (N, C) scores −‖samples[i] − references[j]‖₁ for samples (N, k) and references (C, k)."""
        return -torch.cdist(samples, references, p=1.0)


@hookimpl
def register_distances(register):
    register("manhattan", ManhattanDistance, "Negative L1 distance in the latent space (no fitting)")
