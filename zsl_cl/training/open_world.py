"""Open-world adaptation: find new classes among unlabelled samples, without being told they are new."""

from __future__ import annotations

import time

import numpy as np
import torch

from zsl_cl.core.discovery import cluster_accuracy, discover_groups
from zsl_cl.core.mappings import predict
from zsl_cl.core.novelty import novelty_auroc, novelty_scores
from zsl_cl.data.classes import NUM_CLASSES

__all__ = ["MAX_GROUPS", "open_world_step", "walk_open_world"]

# The maximum number of new classes one experience may produce. The strategy is not given
# how many classes arrive, so this is a cap, not a hint.
MAX_GROUPS = 10


def open_world_step(strategy, latents: torch.Tensor, labels: torch.Tensor) -> dict:
    """Flag novel samples among an unlabelled pool (N, k), group them into new classes, and score the result.

    The strategy sees ``latents`` only; ``labels`` (N,) are used after the
    decisions, to score them. Returns the experience's metrics in percent.
    """
    # Flag: a sample is novel when its score exceeds the base-class threshold.
    scores = novelty_scores(latents, strategy.references.vectors)  # (N,)
    flagged = scores > strategy.novelty_threshold

    # Group the flagged samples; each group's mean latent becomes a new reference.
    if int(flagged.sum()) > 0:
        groups, _ = discover_groups(latents[flagged], MAX_GROUPS, seed=strategy.seed)
        means = torch.stack([latents[flagged][torch.from_numpy(groups == g)].mean(dim=0) for g in np.unique(groups)])
        strategy.add_discovered(means)

    # Classify the whole pool against base and discovered references.
    predicted = predict(latents, strategy.references, strategy.distance)[:, 0]  # (N,) class ids
    return _score(strategy, scores, predicted, labels, flagged)


def _score(strategy, scores, predicted, labels, flagged) -> dict:
    known = torch.isin(labels, torch.tensor(strategy.base_classes))
    novel = ~known
    discovered = predicted >= NUM_CLASSES  # ids of classes found without labels
    groups = torch.where(discovered, predicted, torch.full_like(predicted, -1))
    return {
        "known_accuracy": 100.0 * float((predicted[known] == labels[known]).float().mean()),
        "novel_cluster_accuracy": float(cluster_accuracy(labels[novel].numpy(), groups[novel].numpy())),
        "classes_found": len(strategy.discovered_latents),
        "classes_true": len(torch.unique(labels[novel])),
        "flagged_share": 100.0 * float(flagged.float().mean()),
        "novelty_auroc": novelty_auroc(scores[known], scores[novel]),
    }


def walk_open_world(strategy, benchmark, on_experience=None) -> list[dict]:
    """Adapt to every experience after the first without labels, and return one metrics record each.

    At experience i the pool is the unlabelled test samples of every class that
    has arrived so far, known or not. Classes found at one experience are
    known references at the next, so they should not be found again.
    """
    records = []
    for index in range(1, len(benchmark.test_stream)):
        start = time.perf_counter()
        latents, labels = strategy.test_latents(benchmark.test_stream[: index + 1])  # (N, k), (N,)
        metrics = open_world_step(strategy, latents, labels)
        record = {"index": index, **metrics, "adapt_seconds": time.perf_counter() - start}
        records.append(record)
        if on_experience is not None:
            on_experience(record)
    return records
