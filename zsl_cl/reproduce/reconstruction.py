"""Reconstruction figures: each class's reference and a few test samples, decoded back to 28x28 images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from zsl_cl.data.classes import CLASS_NAMES
from zsl_cl.reproduce.decoding import FigureDecoders, encode_images
from zsl_cl.reproduce.plotting import mosaic, plt, save_figure, tile_centres
from zsl_cl.streams import draw_references

__all__ = ["SAMPLES_PER_CLASS", "reference_images", "unseen_tiles", "seen_tiles", "plot_reconstructions"]

SAMPLES_PER_CLASS = 4


def reference_images(session, draw: int, shots: int) -> dict[int, np.ndarray]:
    """Return the first drawn reference image (28, 28) uint8 of each unseen class, for reference draw ``draw``.

    The indices come from the same seeded draw that the strategy made, so they are its references.
    """
    experience = session.benchmark.train_stream[1]
    picked = draw_references(experience.dataset.targets, session.unseen, shots, session.seed, experience.current_experience, draw)
    images = {}
    for position, c in enumerate(session.unseen):  # draw_references lists `shots` indices per class, classes ascending
        image = experience.dataset[picked[position * shots]][0]  # (1, 28, 28) float in {0, 1}
        images[c] = (image[0] * 255).round().to(torch.uint8).numpy()
    return images


def _test_images(session, c: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``count`` random test images (count, 28, 28) uint8 of class ``c``."""
    members = np.flatnonzero(session.data.test_labels == c)
    chosen = rng.choice(members, size=min(count, len(members)), replace=False)
    return session.data.test_images[np.sort(chosen)]


def _decoded_samples(session, decoders: FigureDecoders, c: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Return, per test sample of class ``c``, its image and its decoded latent code, alternating."""
    images = _test_images(session, c, SAMPLES_PER_CLASS, rng)  # (S, 28, 28) uint8
    _, latents = encode_images(session.strategy, images)  # (S, k)
    decoded = decoders.latent.decode(latents).numpy()  # (S, 28, 28)
    tiles = []
    for image, reconstruction in zip(images, decoded):
        tiles += [image / 255.0, reconstruction]
    return tiles


def unseen_tiles(session, decoders: FigureDecoders, draw: int, shots: int) -> tuple[np.ndarray, list[str]]:
    """Return (U, 3 + 2S, 28, 28) tiles per unseen class and the column names.

    The strategy's references must already be adapted to ``draw``.
    """
    strategy = session.strategy
    references = reference_images(session, draw, shots)
    rng = np.random.default_rng([session.seed, draw])
    rows = []
    for c in session.unseen:
        reference = references[c][None]  # (1, 28, 28) uint8
        features, _ = encode_images(strategy, reference)  # (1, 1568)
        latent_reference = strategy.sae_codes(strategy.references.subset([c]).vectors)  # (1, k): the mean of the class's shots
        rows.append([
            reference[0] / 255.0,
            decoders.features.decode_features(features)[0].numpy(),
            decoders.latent.decode(latent_reference)[0].numpy(),
            *_decoded_samples(session, decoders, c, rng),
        ])
    columns = ["reference", "feature-decoded reference", "decoded latent reference", *_sample_columns()]
    return np.asarray(rows, dtype=np.float32), columns


def seen_tiles(session, decoders: FigureDecoders, draw: int) -> tuple[np.ndarray, list[str]]:
    """Return (T, 1 + 2S, 28, 28) tiles per seen class, the decoded class mean first, and the column names."""
    strategy = session.strategy
    rng = np.random.default_rng([session.seed, draw, 1])
    rows = []
    for c in session.seen:
        latent_mean = strategy.sae_codes(strategy.references.subset([c]).vectors)  # (1, k)
        rows.append([decoders.latent.decode(latent_mean)[0].numpy(), *_decoded_samples(session, decoders, c, rng)])
    return np.asarray(rows, dtype=np.float32), ["decoded latent class mean", *_sample_columns()]


def _sample_columns() -> list[str]:
    names = []
    for i in range(1, SAMPLES_PER_CLASS + 1):
        names += [f"sample {i}", f"decoded {i}"]
    return names


def plot_reconstructions(tiles: np.ndarray, columns: list[str], classes: list[int], path: Path, title: str) -> Path:
    """Draw a (rows, cols, 28, 28) tile array as one image with class names on rows and column names on top."""
    rows, cols = tiles.shape[:2]
    figure, axes = plt.subplots(figsize=(0.6 * cols + 1.2, 0.6 * rows + 1.6))
    axes.imshow(mosaic(tiles), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.set_xticks(tile_centres(cols), columns, rotation=60, ha="left", fontsize=7)
    axes.xaxis.tick_top()
    axes.set_yticks(tile_centres(rows), [CLASS_NAMES[c] for c in classes], fontsize=8)
    axes.tick_params(length=0)
    axes.set_xlabel(title, fontsize=9)  # below the image, because the column names sit on top
    return save_figure(figure, path)
