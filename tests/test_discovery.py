"""Grouping novel samples into classes, and Hungarian-matched cluster accuracy."""

import numpy as np
import torch

from zsl_cl.core.discovery import cluster_accuracy, discover_groups, silhouette


def blobs(centres, per_group=40, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    points = np.concatenate([c + spread * rng.normal(size=(per_group, len(c))) for c in centres])
    labels = np.repeat(np.arange(len(centres)), per_group)
    return torch.from_numpy(points), labels


def test_discover_finds_three_directions():
    latents, labels = blobs(np.eye(3) * 5)
    groups, centroids = discover_groups(latents, max_groups=6, seed=0)
    assert len(centroids) == 3
    assert cluster_accuracy(labels, groups) == 100.0


def test_discover_small_set_is_one_group():
    latents, _ = blobs(np.eye(2), per_group=3)
    groups, centroids = discover_groups(latents, max_groups=5, seed=0)
    assert set(groups.tolist()) == {0}
    assert centroids.shape == (1, 2)


def test_cluster_accuracy_uses_one_to_one_matching():
    true = np.array([0, 0, 1, 1, 2, 2])
    # Group 5 holds both class 0 and class 1: only one of them can be matched to it.
    groups = np.array([5, 5, 5, 5, 7, 7])
    assert cluster_accuracy(true, groups) == 100.0 * 4 / 6


def test_cluster_accuracy_ungrouped_count_as_wrong():
    assert cluster_accuracy(np.array([0, 0, 1, 1]), np.array([1, -1, 2, 2])) == 75.0


def test_silhouette_high_for_separated_groups():
    latents, labels = blobs(np.eye(2) * 10)
    assert silhouette(latents.numpy(), labels) > 0.9
    shuffled = np.random.default_rng(0).permutation(labels)
    assert silhouette(latents.numpy(), shuffled) < 0.1
