"""Size normalisation: crop each character to its ink and centre it in a fixed box, as MNIST and EMNIST are."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["size_normalise", "size_normalised"]


def size_normalise(images: np.ndarray, box: int = 20) -> np.ndarray:
    """Return (N, 28, 28) uint8 binary images, each cropped to its ink, scaled to fit ``box`` and centred.

    FEMNIST characters keep the size and position at which they were written,
    whereas MNIST digits were scaled into a 20x20 box and centred in 28x28.
    The aspect ratio is kept. Resizing is antialiased bilinear and the result
    is binarised at half intensity again. A blank image stays blank.
    """
    size = images.shape[-1]
    if not 1 <= box <= size:
        raise ValueError(f"invalid box {box}: use a size from 1 to the image size {size}")
    out = np.zeros_like(images)
    for i, image in enumerate(images):
        rows, cols = np.nonzero(image)
        if rows.size == 0:
            continue
        crop = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]  # (h, w)
        scale = box / max(crop.shape)
        height, width = (max(1, round(side * scale)) for side in crop.shape)
        pixels = torch.from_numpy(crop.astype(np.float32) / 255.0)[None, None]  # (1, 1, h, w)
        resized = F.interpolate(pixels, size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0, 0]
        top, left = (size - height) // 2, (size - width) // 2
        out[i, top : top + height, left : left + width] = (resized.numpy() >= 0.5) * 255
    return out


def size_normalised(data, enabled: bool = True):
    """Return CharacterData ``data`` with every train and test image size-normalised; unchanged when not ``enabled``."""
    if not enabled:
        return data
    return replace(
        data,
        train_images=size_normalise(data.train_images),
        test_images=size_normalise(data.test_images),
        description=f"{data.description}; size-normalised to a 20x20 box",
    )
