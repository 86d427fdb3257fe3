"""Top-k accuracy of samples matched against references, and the study's five mappings."""

from __future__ import annotations

import torch

from zsl_cl.core.references import ReferenceSet
from zsl_cl.protocols import Distance

__all__ = ["MAPPINGS", "predict", "topk_accuracy", "evaluate_mapping", "five_mappings"]

# name -> (classes whose test samples are scored, classes whose references compete)
MAPPINGS: dict[str, tuple[str, str]] = {
    "U->U": ("U", "U"),
    "U->Omega": ("U", "Omega"),
    "T->T": ("T", "T"),
    "T->Omega": ("T", "Omega"),
    "Omega->Omega": ("Omega", "Omega"),
}


def predict(samples: torch.Tensor, references: ReferenceSet, distance: Distance, k: int = 1) -> torch.Tensor:
    """Return the (N, k) global class ids of the k closest references for each sample."""
    scores = distance.scores(samples, references.vectors.to(samples.dtype))  # (N, C)
    if references.offsets is not None:
        scores = scores + references.offsets.to(scores)
    k = min(k, len(references))
    top = scores.topk(k, dim=1).indices  # (N, k) rows of references
    return torch.tensor(references.classes, device=top.device)[top]


def topk_accuracy(samples: torch.Tensor, labels: torch.Tensor, references: ReferenceSet, distance: Distance, ks=(1, 3)) -> dict[str, float]:
    """Return {"top1": %, "top3": %}: the share of samples whose class is among the k closest references."""
    ranked = predict(samples, references, distance, k=max(ks))  # (N, max k)
    hits = ranked == labels.to(ranked.device).unsqueeze(1)  # (N, max k)
    return {f"top{k}": 100.0 * float(hits[:, :k].any(dim=1).float().mean()) for k in ks}


def evaluate_mapping(samples, labels, references: ReferenceSet, sample_classes, reference_classes, distance) -> dict[str, float]:
    """Score the test samples of ``sample_classes`` against the references of ``reference_classes``."""
    mask = torch.isin(labels, torch.tensor(sorted(sample_classes), device=labels.device))
    if not bool(mask.any()):
        raise ValueError(f"no test samples for classes {sorted(sample_classes)}: every class needs test data")
    return topk_accuracy(samples[mask], labels[mask], references.subset(list(reference_classes)), distance)


def five_mappings(samples, labels, references: ReferenceSet, seen: list[int], unseen: list[int], distance) -> dict[str, dict[str, float]]:
    """Evaluate U->U, U->Omega, T->T, T->Omega and Omega->Omega, with T = ``seen`` and U = ``unseen``."""
    groups = {"T": list(seen), "U": list(unseen), "Omega": list(seen) + list(unseen)}
    return {
        name: evaluate_mapping(samples, labels, references, groups[src], groups[dst], distance)
        for name, (src, dst) in MAPPINGS.items()
    }
