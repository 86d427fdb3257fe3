"""The study's small CNN backbone: three conv blocks, 1568 features, one linear head."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CharacterCNN", "FEATURE_DIM"]

FEATURE_DIM = 7 * 7 * 32  # 1568


def _conv_block(in_channels: int, out_channels: int, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding="same"),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return layers


class CharacterCNN(nn.Module):
    """Conv(8)-pool, conv(16)-pool, conv(32): 28x28 binary images to 1568 features, then a head.

    ``head`` is any module mapping (B, 1568) features to logits. Avalanche's
    ``IncrementalClassifier`` is used so that the output layer is indexed by
    global class id and can grow when new classes arrive.
    """

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_block(1, 8, pool=True),  # (B, 8, 14, 14)
            *_conv_block(8, 16, pool=True),  # (B, 16, 7, 7)
            *_conv_block(16, 32, pool=False),  # (B, 32, 7, 7)
            nn.Flatten(),  # (B, 1568): the third ReLU's activations
        )
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
