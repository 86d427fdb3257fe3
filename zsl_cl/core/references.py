"""Class references in the latent space: class means for seen classes, labelled shots for new ones."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ReferenceSet", "class_means", "build_references"]


@dataclass
class ReferenceSet:
    """One latent reference per class; row i of ``vectors`` belongs to global class ``classes[i]``."""

    classes: list[int]
    vectors: torch.Tensor  # (C, k)
    sources: list[str]  # "mean" (all labelled training data), "shot" (labelled references) or "discovered"
    offsets: torch.Tensor | None = None  # (C,) added to each reference's score; None adds nothing

    def subset(self, classes: list[int]) -> "ReferenceSet":
        """Return the references of ``classes``, in that order."""
        rows = [self.classes.index(c) for c in classes]
        offsets = None if self.offsets is None else self.offsets[rows]
        return ReferenceSet(list(classes), self.vectors[rows], [self.sources[r] for r in rows], offsets)

    def __len__(self) -> int:
        return len(self.classes)


def class_means(latents: torch.Tensor, labels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Return the (C, k) mean latent code of each class in ``classes``."""
    means = []
    for c in classes:
        members = latents[labels == c]  # (n_c, k)
        if len(members) == 0:
            raise ValueError(f"class {c} has no samples to average: every reference class needs data")
        means.append(members.mean(dim=0))
    return torch.stack(means)


def build_references(
    seen_latents: torch.Tensor,
    seen_labels: torch.Tensor,
    seen_classes: list[int],
    shot_latents: torch.Tensor,
    shot_labels: torch.Tensor,
    shot_classes: list[int],
    seen_offset: float = 0.0,
) -> ReferenceSet:
    """Rebuild the references over Ω = seen ∪ shot classes.

    Seen classes get the mean of their training latents. Each one-shot class
    gets the mean of its labelled shots, which is the single reference itself
    when there is one shot per class. ``seen_offset`` is subtracted from the
    score of every seen-class reference: a class mean is closer to its own
    samples than one sample is, which biases predictions towards seen classes.
    """
    parts, sources = [], []
    if seen_classes:
        parts.append(class_means(seen_latents, seen_labels, seen_classes))
        sources += ["mean"] * len(seen_classes)
    if shot_classes:
        parts.append(class_means(shot_latents, shot_labels, shot_classes))
        sources += ["shot"] * len(shot_classes)
    offsets = None
    if seen_offset:
        offsets = torch.tensor([-seen_offset if source == "mean" else 0.0 for source in sources], dtype=torch.float64)
    return ReferenceSet(list(seen_classes) + list(shot_classes), torch.cat(parts), sources, offsets)
