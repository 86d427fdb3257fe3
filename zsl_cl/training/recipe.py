"""Backbone construction and training on the base classes: head, optimiser, schedule, distortions, held-out data.

SAEStrategy and ``zsl-cl compare`` both build their backbone here, so the SAE
in a comparison starts from the CNN it would train itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from zsl_cl._avalanche import IncrementalClassifier, SupervisedPlugin
from zsl_cl.config import SAEConfig
from zsl_cl.core.cnn import FEATURE_DIM, CharacterCNN
from zsl_cl.streams import split_validation

__all__ = [
    "CosineIncrementalClassifier",
    "build_backbone",
    "build_optimizer",
    "recipe_plugins",
    "random_affine",
    "AugmentPlugin",
    "OneCyclePlugin",
    "HoldOutPlugin",
    "HOLD_OUT_FRACTION",
    "hold_out_fraction",
]

# Share of the base training data held out when the seen-class calibration needs it.
HOLD_OUT_FRACTION = 0.1


class CosineIncrementalClassifier(IncrementalClassifier):
    """An IncrementalClassifier whose logits are ``scale · cos(features, row)``; the bias is unused.

    Normalising both sides keeps every class's logits on one scale, so a row
    set from a single new sample competes fairly with the trained rows.
    """

    def __init__(self, in_features: int, scale: float, **kwargs) -> None:
        super().__init__(in_features, **kwargs)
        self.scale = scale

    def forward(self, x, **kwargs):
        weight = F.normalize(self.classifier.weight, dim=1)  # (units, 1568)
        out = self.scale * F.normalize(x, dim=1) @ weight.T  # (B, units)
        if self.masking:
            out = out.masked_fill(mask=torch.logical_not(self.active_units), value=self.mask_value)
        return out


def build_backbone(config: SAEConfig) -> CharacterCNN:
    """Return the untrained CNN with the configured head; call ``torch.manual_seed`` first."""
    if config.head == "cosine":
        return CharacterCNN(CosineIncrementalClassifier(FEATURE_DIM, config.head_scale, initial_out_features=2))
    return CharacterCNN(IncrementalClassifier(FEATURE_DIM, initial_out_features=2))


def build_optimizer(model: torch.nn.Module, config: SAEConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def recipe_plugins(config: SAEConfig, seed: int) -> list:
    """Return the Avalanche plugins that the configured training recipe needs."""
    plugins = []
    if config.augment:
        plugins.append(AugmentPlugin(seed))
    if config.schedule == "onecycle":
        plugins.append(OneCyclePlugin(config.lr))
    return plugins


def hold_out_fraction(config: SAEConfig, requested: float = 0.0) -> float:
    """Return the share of base data to hold out: ``requested``, or a tenth when the calibration needs some."""
    if config.calibration == "validation":
        return requested or HOLD_OUT_FRACTION
    return requested


def random_affine(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Distort (B, 1, 28, 28) binary images by a random rotation, scale, shear and shift each; keep them binary.

    The ranges (±12°, ±12 % scale, ±0.15 shear, ±5 % shift) stay within how
    differently people write one character, so every copy keeps its class.
    """
    n = len(images)
    draw = lambda bound: (torch.rand(n, generator=generator) * 2 - 1) * bound  # noqa: E731, uniform in ±bound
    angle, scale, shear = draw(math.radians(12)), 1 + draw(0.12), draw(0.15)
    shift_x, shift_y = draw(0.1), draw(0.1)  # in units of half the image width
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, shear - sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return (F.grid_sample(images, grid, align_corners=False) >= 0.5).to(images.dtype)


class AugmentPlugin(SupervisedPlugin):
    """Replace each training mini-batch's images by random affine distortions of them."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)

    def before_forward(self, strategy, **kwargs):
        strategy.mbatch[0] = random_affine(strategy.mbatch[0], self.generator)


class OneCyclePlugin(SupervisedPlugin):
    """Step a one-cycle learning-rate schedule every iteration of the first training experience."""

    def __init__(self, max_lr: float) -> None:
        super().__init__()
        self.max_lr = max_lr
        self.scheduler = None

    def before_training_epoch(self, strategy, **kwargs):
        if self.scheduler is None:
            steps = strategy.train_epochs * len(strategy.dataloader)
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(strategy.optimizer, max_lr=self.max_lr, total_steps=steps)

    def after_update(self, strategy, **kwargs):
        # Update i runs at the schedule's step i - 1, so the last update needs no step after it.
        if self.scheduler.last_epoch < self.scheduler.total_steps - 1:
            self.scheduler.step()


class HoldOutPlugin(SupervisedPlugin):
    """Hold ``fraction`` of each class of the first training experience out of training, as ``validation``."""

    def __init__(self, fraction: float, seed: int) -> None:
        super().__init__()
        self.fraction = fraction
        self.seed = seed
        self.validation = None

    def after_train_dataset_adaptation(self, strategy, **kwargs):
        if self.validation is not None:
            return
        train, validation = split_validation(list(strategy.adapted_dataset.targets), self.fraction, self.seed)
        self.validation = strategy.adapted_dataset.subset(validation)
        strategy.adapted_dataset = strategy.adapted_dataset.subset(train)
