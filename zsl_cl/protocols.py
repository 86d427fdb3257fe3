"""Interfaces of the pluggable components: what a solver, distance or decoder factory returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

__all__ = ["Solver", "Distance", "Decoder", "DecoderContext"]


@runtime_checkable
class Solver(Protocol):
    """Solves the Sylvester equation ``A W + W B = C`` for W.

    A is (k, k), B is (d, d), C and the returned W are (k, d). Inputs are
    float64 tensors on one device, and W comes back on that device.
    """

    def __call__(self, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Distance(Protocol):
    """Scores samples against class references in the latent space; higher means closer."""

    def fit(self, latents: torch.Tensor, labels: torch.Tensor) -> None:
        """Estimate any statistics from base-class training latents (N, k) and labels (N,)."""

    def scores(self, samples: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
        """Return (N, C) scores of samples (N, k) against references (C, k)."""


@dataclass
class DecoderContext:
    """Base-class training data and fitted projections that a decoder may train on."""

    images: torch.Tensor  # (N, 28, 28) uint8, ink = 255
    features: torch.Tensor  # (N, 1568) CNN features
    label_space: torch.Tensor  # (N, |T|) features projected through W_l
    w_label: torch.Tensor  # (1568, |T|) ridge projection W_l
    w_latent: torch.Tensor  # (k, |T|) SAE encoder W
    device: str = "cpu"
    seed: int = 0
    epochs: int = 4


@runtime_checkable
class Decoder(Protocol):
    """Maps latent codes back to 28x28 images for figures."""

    def fit(self, context: DecoderContext) -> None:
        """Train on the base classes."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Return (N, 28, 28) float images in [0, 1] for latents (N, k)."""
