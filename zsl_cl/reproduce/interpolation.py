"""Bilinear interpolation between four seen characters in pixel, latent, label (W_l) and feature space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from zsl_cl.data.classes import CLASS_NAMES, parse_classes
from zsl_cl.reproduce.decoding import FigureDecoders, decode_label_space, encode_images
from zsl_cl.reproduce.plotting import mosaic, plt, save_figure

__all__ = ["PREFERRED_CORNERS", "STEPS", "corner_classes", "bilinear_grid", "interpolation_grids", "plot_interpolation"]

# Corners top-left, top-right, bottom-left, bottom-right, used when all four are seen classes.
PREFERRED_CORNERS = "3G8S"
STEPS = 6  # grid points per side, corners included


def corner_classes(seen: list[int]) -> list[int]:
    """Return 3, G, 8 and S when all four are seen, else the first four seen classes in class order."""
    preferred = parse_classes(PREFERRED_CORNERS)
    if all(c in seen for c in preferred):
        return preferred
    if len(seen) < 4:
        raise ValueError(f"interpolation needs four seen classes, but the run has {len(seen)}: choose a run with more seen classes or --no-figures")
    return sorted(seen)[:4]


def bilinear_grid(corners: torch.Tensor, steps: int) -> torch.Tensor:
    """Interpolate corners (4, D), ordered top-left, top-right, bottom-left, bottom-right, to a (steps, steps, D) grid.

    Point (i, j) is (1−a)(1−b)·c00 + b(1−a)·c01 + a(1−b)·c10 + ab·c11 with a = i/(steps−1) down and
    b = j/(steps−1) across, so the four grid corners equal the four inputs.
    """
    if corners.ndim != 2 or corners.shape[0] != 4:
        raise ValueError(f"invalid corners of shape {tuple(corners.shape)}: expected (4, D)")
    if steps < 2:
        raise ValueError(f"invalid interpolation steps {steps}: use 2 or more")
    t = torch.linspace(0.0, 1.0, steps, dtype=corners.dtype)
    a, b = t[:, None, None], t[None, :, None]  # (steps, 1, 1) down, (1, steps, 1) across
    top = (1 - b) * corners[0] + b * corners[1]  # (1, steps, D)
    bottom = (1 - b) * corners[2] + b * corners[3]  # (1, steps, D)
    return (1 - a) * top + a * bottom  # (steps, steps, D)


def _corner_images(session, classes: list[int]) -> np.ndarray:
    """Return one seeded random test image (4, 28, 28) uint8 of each corner class."""
    rng = np.random.default_rng([session.seed, 2])
    picked = [rng.choice(np.flatnonzero(session.data.test_labels == c)) for c in classes]
    return session.data.test_images[picked]


def interpolation_grids(session, decoders: FigureDecoders, classes: list[int], steps: int = STEPS) -> dict[str, np.ndarray]:
    """Return a (steps, steps, 28, 28) image grid per space: pixel, latent, label (W_l) and feature."""
    strategy = session.strategy
    images = _corner_images(session, classes)  # (4, 28, 28) uint8
    features, latents = encode_images(strategy, images)  # (4, 1568), (4, k)
    label_space = features.to(torch.float64) @ strategy.label_projection  # (4, |T|)

    def decoded(grid: torch.Tensor, decode) -> np.ndarray:
        flat = grid.reshape(steps * steps, -1)  # (steps², D)
        return decode(flat).reshape(steps, steps, 28, 28).numpy()

    pixels = torch.from_numpy(images.reshape(4, -1) / 255.0)  # (4, 784)
    return {
        "pixel": bilinear_grid(pixels, steps).reshape(steps, steps, 28, 28).numpy(),
        "latent": decoded(bilinear_grid(latents, steps), decoders.latent.decode),
        "label (W_l)": decoded(bilinear_grid(label_space, steps), lambda x: decode_label_space(decoders.latent, strategy.sae.w, x)),
        "feature": decoded(bilinear_grid(features.to(torch.float64), steps), lambda f: decoders.features.decode_features(f.float())),
    }


def plot_interpolation(grids: dict[str, np.ndarray], classes: list[int], path: Path, title: str) -> Path:
    """Draw the interpolation grid of each space side by side, as a PNG."""
    figure, panels = plt.subplots(1, len(grids), figsize=(3.2 * len(grids), 3.6))
    for axes, (space, grid) in zip(np.atleast_1d(panels), grids.items()):
        axes.imshow(mosaic(grid), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes.set_title(f"{space} space", fontsize=10)
        axes.set_axis_off()
    corners = ", ".join(CLASS_NAMES[c] for c in classes)
    figure.suptitle(f"{title}\ncorners (top-left, top-right, bottom-left, bottom-right): {corners}", fontsize=9)
    return save_figure(figure, path)
