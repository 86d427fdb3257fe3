"""Novelty scores: how far a sample lies from every known class reference."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics.functional.classification import binary_auroc

__all__ = ["novelty_scores", "calibrate_threshold", "novelty_auroc"]


def novelty_scores(latents: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Return (N,) scores 1 - max cosine similarity to the (C, k) references; higher is more novel.

    Cosine is used rather than the run's distance because the z-scored cosine
    ranks a sample relative to the batch, while a novelty score must mean the
    same thing for one sample as for a thousand.
    """
    similarity = F.normalize(latents, dim=1) @ F.normalize(references.to(latents.dtype), dim=1).T  # (N, C)
    return 1.0 - similarity.max(dim=1).values


def calibrate_threshold(validation_scores: torch.Tensor, false_alarm_rate: float = 0.05) -> float:
    """Return the score above which a known-class sample is rare: the (1 - rate) quantile on validation data.

    Flagging samples above it is a test at significance level ``false_alarm_rate``
    against the null hypothesis "this sample belongs to a known class", with the
    null distribution estimated on held-out base-class samples.
    """
    if not 0.0 < false_alarm_rate < 1.0:
        raise ValueError(f"invalid false alarm rate {false_alarm_rate}: use a value between 0 and 1")
    if len(validation_scores) == 0:
        raise ValueError("no validation samples to calibrate the novelty threshold on")
    return float(torch.quantile(validation_scores.to(torch.float64), 1.0 - false_alarm_rate))


def novelty_auroc(known_scores: torch.Tensor, novel_scores: torch.Tensor) -> float | None:
    """Return the AUROC (%) of separating novel from known samples by score, or None if either set is empty."""
    if len(known_scores) == 0 or len(novel_scores) == 0:
        return None
    scores = torch.cat([known_scores, novel_scores]).to(torch.float64)
    targets = torch.cat([torch.zeros(len(known_scores)), torch.ones(len(novel_scores))]).long()
    return 100.0 * float(binary_auroc(scores, targets))
