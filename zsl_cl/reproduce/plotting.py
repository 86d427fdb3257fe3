"""Matplotlib helpers for the reproduction figures: a headless backend, image mosaics and PNG output."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

# Agg renders to files without a display, so figures work on servers and in CI.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402  (Pillow, a dependency of matplotlib)

__all__ = ["plt", "mosaic", "tile_centres", "save_figure"]


def mosaic(tiles: np.ndarray, gap: int = 2) -> np.ndarray:
    """Tile images (rows, cols, H, W) in [0, 1] into one (rows·(H+gap)−gap, cols·(W+gap)−gap) image.

    The gaps are filled with 0.5 grey, so white ink and black background both stay visible as tile edges.
    """
    rows, cols, height, width = tiles.shape
    canvas = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap), 0.5, dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            top, left = r * (height + gap), c * (width + gap)
            canvas[top : top + height, left : left + width] = tiles[r, c]
    return canvas


def tile_centres(count: int, size: int = 28, gap: int = 2) -> list[float]:
    """Return the pixel centre of each of ``count`` tiles along one axis of a mosaic, for tick labels."""
    return [i * (size + gap) + (size - 1) / 2 for i in range(count)]


def save_figure(figure, path: Path, dpi: int = 100) -> Path:
    """Write ``figure`` as an 8-bit palette PNG and close it, so long runs do not accumulate open figures.

    The figures are grey images and a few plot colours, so 256 adaptive colours keep them
    visually unchanged at a fraction of the size of matplotlib's RGBA output.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)
    return path
