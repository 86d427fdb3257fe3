"""Group novel samples into new classes, and score the groups against the true classes."""

from __future__ import annotations

import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

__all__ = ["discover_groups", "silhouette", "cluster_accuracy"]


def silhouette(points: np.ndarray, assignment: np.ndarray) -> float:
    """Return the mean silhouette coefficient of a clustering of points (M, k); -1 when undefined."""
    groups = np.unique(assignment)
    if len(groups) < 2 or len(groups) >= len(points):
        return -1.0
    distances = cdist(points, points)  # (M, M)
    mean_to = np.stack([distances[:, assignment == g].mean(axis=1) for g in groups], axis=1)  # (M, G)
    own = np.searchsorted(groups, assignment)
    sizes = np.array([(assignment == g).sum() for g in groups])
    # a: mean distance to the other members of one's own group, excluding oneself.
    a = mean_to[np.arange(len(points)), own] * sizes[own] / np.maximum(sizes[own] - 1, 1)
    mean_to[np.arange(len(points)), own] = np.inf
    b = mean_to.min(axis=1)
    return float(np.mean((b - a) / np.maximum(np.maximum(a, b), 1e-12)))


def discover_groups(latents: torch.Tensor, max_groups: int, seed: int, min_size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Cluster flagged latents (M, k) with k-means on the unit sphere, choosing the group count by silhouette.

    Returns the (M,) group index of each sample and the (G, k) group centroids.
    Fewer than ``2 * min_size`` samples form one group, because a silhouette
    over a handful of points would pick noise.
    """
    points = torch.nn.functional.normalize(latents.to(torch.float64), dim=1).numpy()
    if len(points) < 2 * min_size:
        return np.zeros(len(points), dtype=int), points.mean(axis=0, keepdims=True)
    best = (-np.inf, None, None)
    for count in range(2, min(max_groups, len(points) // min_size) + 1):
        centroids, assignment = kmeans2(points, count, minit="++", seed=seed)
        score = silhouette(points, assignment)
        if score > best[0]:
            best = (score, assignment, centroids)
    _, assignment, centroids = best
    # Renumber the groups that kept members as 0..G-1.
    kept = np.unique(assignment)
    return np.searchsorted(kept, assignment), centroids[kept]


def cluster_accuracy(true_labels: np.ndarray, groups: np.ndarray) -> float:
    """Return the accuracy (%) after matching groups one-to-one to true classes with the Hungarian method.

    A group left unmatched (more groups than classes) or a sample with group
    -1 (not grouped) counts as wrong.
    """
    if len(true_labels) == 0:
        return 0.0
    classes = np.unique(true_labels)
    found = np.unique(groups[groups >= 0])
    counts = np.array([[np.sum((groups == g) & (true_labels == c)) for c in classes] for g in found]).reshape(len(found), len(classes))
    if counts.size == 0:
        return 0.0
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return 100.0 * counts[rows, cols].sum() / len(true_labels)
