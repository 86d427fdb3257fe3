"""Grow the classifier head by new classes without gradient steps, by calibrated weight imprinting."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zsl_cl.training.recipe import CosineIncrementalClassifier

__all__ = ["HeadCalibration", "calibrate_head", "imprint_rows", "head_predictions"]


@dataclass(frozen=True)
class HeadCalibration:
    """Statistics of the trained head on the base training features."""

    feature_mean: torch.Tensor  # (1568,) mean base feature μ
    own_logit: float  # mean logit of a sample's own class
    other_logit: float  # mean logit of the other trained classes


@torch.no_grad()
def calibrate_head(head, features: torch.Tensor, labels: torch.Tensor, classes: list[int]) -> HeadCalibration:
    """Measure how the SGD-trained rows score their own class and the others on base features (N, 1568)."""
    logits = head.classifier(features)[:, classes]  # (N, |T|), unmasked
    columns = torch.tensor([classes.index(int(y)) for y in labels])
    own = logits[torch.arange(len(labels)), columns]  # (N,)
    other = (logits.sum(dim=1) - own) / (len(classes) - 1)  # (N,)
    return HeadCalibration(features.mean(dim=0), float(own.mean()), float(other.mean()))


@torch.no_grad()
def imprint_rows(head, features: torch.Tensor, labels: torch.Tensor, calibration: HeadCalibration) -> list[int]:
    """Set the output row of each class in ``labels`` from its reference features.

    ``head`` is an Avalanche ``IncrementalClassifier`` that has already grown
    to hold the new classes. A new row points from the mean base feature μ to
    the class's mean reference feature f. Its scale and bias are chosen so
    that the row scores f like a trained row scores its own samples, and μ
    like a trained row scores other classes' samples; raw imprinted rows on
    non-negative ReLU features would otherwise outscore every trained row.
    Trained rows are never modified, so an old class's prediction changes
    only where a new class now scores higher. Returns the imprinted class ids.
    """
    linear = head.classifier
    mu = calibration.feature_mean
    classes = sorted(set(labels.tolist()))
    if isinstance(head, CosineIncrementalClassifier):
        # A cosine head ignores row length and bias: the row is the mean reference feature itself.
        for c in classes:
            linear.weight[c] = features[labels == c].mean(dim=0)
        return classes
    for c in classes:
        offset = features[labels == c].mean(dim=0) - mu  # (1568,)
        distance = offset.norm().clamp_min(1e-12)
        direction = offset / distance
        gain = (calibration.own_logit - calibration.other_logit) / distance
        linear.weight[c] = gain * direction
        linear.bias[c] = calibration.other_logit - gain * float(direction @ mu)
    return classes


@torch.no_grad()
def head_predictions(head, features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Return the (N, k) global class ids ranked by the head's logits; inactive units are masked."""
    logits = head(features.to(head.classifier.weight.dtype))  # (N, units), masked units at mask_value
    return logits.topk(k, dim=1).indices
