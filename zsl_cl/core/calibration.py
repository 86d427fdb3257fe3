"""The seen-class offset: how much a class mean outscores a single sample of the class, measured on held-out base data."""

from __future__ import annotations

import torch

from zsl_cl.core.references import ReferenceSet
from zsl_cl.protocols import Distance

__all__ = ["seen_offset"]


def seen_offset(latents: torch.Tensor, views: torch.Tensor, labels: torch.Tensor, means: ReferenceSet, distance: Distance) -> float:
    """Return the mean gap between a sample's score to its class mean and to another sample of its class.

    ``latents`` (V, D) are held-out base samples, ``views`` (V, D) the same
    samples encoded as a one-shot reference would be, and ``means`` the base
    class means. Seen classes are represented by means and new classes by one
    sample, so unadjusted scores favour seen classes by about this gap. The gap
    is measured on base classes only: no new-class data is used. Classes with
    fewer than 2 held-out samples are skipped.
    """
    gaps = []
    for row, c in enumerate(means.classes):
        members = (labels == c).nonzero().flatten()
        if len(members) < 2:
            continue
        own = distance.scores(latents[members], means.vectors[row : row + 1].to(latents))[:, 0]  # (n,)
        pair = distance.scores(latents[members], views[members])  # (n, n): sample i against sample j as a reference
        off_diagonal = ~torch.eye(len(members), dtype=torch.bool)
        gaps.append(float(own.mean() - pair[off_diagonal].mean()))
    # NOTE: with fewer than 2 held-out samples in every class there is no gap to measure, and no offset is applied.
    return sum(gaps) / len(gaps) if gaps else 0.0
