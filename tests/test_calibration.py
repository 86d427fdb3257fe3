"""The seen-class offset measured on held-out base samples, and how references apply it."""

from __future__ import annotations

import torch

from plugins.distances import Cosine, Euclidean
from zsl_cl.core.calibration import seen_offset
from zsl_cl.core.mappings import predict
from zsl_cl.core.references import build_references


def clusters(spread: float, per_class: int = 30, seed: int = 0):
    """Two classes around orthogonal centres: (2·per_class, 8) latents and their labels."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.eye(8, dtype=torch.float64)[:2] * 5
    labels = torch.arange(2).repeat_interleave(per_class)
    latents = centres[labels] + spread * torch.randn(len(labels), 8, generator=generator, dtype=torch.float64)
    return latents, labels


def means_of(latents, labels):
    return build_references(latents, labels, [0, 1], latents[:0], labels[:0], [])


def test_offset_matches_the_definition() -> None:
    latents, labels = clusters(spread=1.0)
    distance = Cosine()
    means = means_of(latents, labels)
    expected = []
    for row, c in enumerate([0, 1]):
        members = latents[labels == c]
        own = distance.scores(members, means.vectors[row : row + 1])[:, 0].mean()
        pair = distance.scores(members, members)
        n = len(members)
        expected.append(float(own - (pair.sum() - pair.diagonal().sum()) / (n * n - n)))
    assert abs(seen_offset(latents, latents, labels, means, distance) - sum(expected) / 2) < 1e-12


def test_offset_grows_with_the_spread_of_samples() -> None:
    tight, tight_labels = clusters(spread=0.5)
    loose, loose_labels = clusters(spread=3.0)
    distance = Cosine()
    small = seen_offset(tight, tight, tight_labels, means_of(tight, tight_labels), distance)
    large = seen_offset(loose, loose, loose_labels, means_of(loose, loose_labels), distance)
    assert 0 < small < large


def test_averaged_views_shrink_the_offset() -> None:
    latents, labels = clusters(spread=2.0)
    means = means_of(latents, labels)
    distance = Euclidean()
    # A reference seen through several views lies nearer its class mean, so a mean outscores it by less.
    views = 0.5 * latents + 0.5 * means.vectors[labels]
    assert seen_offset(latents, views, labels, means, distance) < seen_offset(latents, latents, labels, means, distance)


def test_classes_with_one_sample_give_no_offset() -> None:
    latents, labels = clusters(spread=1.0, per_class=1)
    assert seen_offset(latents, latents, labels, means_of(latents, labels), Cosine()) == 0.0


def test_offset_moves_predictions_from_means_to_shots() -> None:
    latents, labels = clusters(spread=1.0)
    shot = torch.tensor([[3.0, 3.0, 0, 0, 0, 0, 0, 0]], dtype=torch.float64)  # between the two class centres
    plain = build_references(latents, labels, [0, 1], shot, torch.tensor([2]), [2])
    shifted = build_references(latents, labels, [0, 1], shot, torch.tensor([2]), [2], seen_offset=0.5)
    sample = torch.tensor([[5.0, 1.0, 0, 0, 0, 0, 0, 0]], dtype=torch.float64)
    assert predict(sample, plain, Cosine())[0, 0] == 0
    assert predict(sample, shifted, Cosine())[0, 0] == 2
    assert shifted.offsets.tolist() == [-0.5, -0.5, 0.0]
    assert shifted.subset([2, 0]).offsets.tolist() == [0.0, -0.5]
    assert plain.offsets is None
