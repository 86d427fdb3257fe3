"""A record of the new-class training samples that each strategy actually trained on."""

from __future__ import annotations

import hashlib

import torch

from zsl_cl._avalanche import SupervisedPlugin

__all__ = ["SampleRecorder", "image_digest", "digest_of"]

# Up to this many samples per experience, the record lists every sample's
# digest; above it, only the count and one digest over all of them.
LISTED_SAMPLES = 64


def image_digest(image: torch.Tensor, label: int) -> str:
    """Return a short SHA-1 of one (1, 28, 28) float image and its label."""
    payload = image.detach().cpu().contiguous().to(torch.float32).numpy().tobytes()
    return hashlib.sha1(payload + int(label).to_bytes(2, "little")).hexdigest()[:16]


def digest_of(digests) -> str:
    """Return one SHA-1 over a set of sample digests, independent of their order."""
    return hashlib.sha1(",".join(sorted(set(digests))).encode()).hexdigest()[:16]


class SampleRecorder(SupervisedPlugin):
    """Record every training sample of the current experience's classes that reaches the model.

    The recorder reads the mini-batches after replay buffers and other plugins
    have mixed their own samples in, so it records what a strategy trained on
    rather than what it was given. Samples of earlier classes (replayed base
    data, exemplars) are not recorded. Experience 0 is not recorded because
    every strategy gets all of its data.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[int, set[str]] = {}

    def before_forward(self, strategy, **kwargs):
        if strategy.is_training:
            self.add(strategy.experience, strategy.mb_x, strategy.mb_y)

    def add(self, experience, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Record the samples of ``images`` (B, 1, 28, 28) whose label is new in ``experience``."""
        index = experience.current_experience
        if index == 0:
            return
        new = set(experience.classes_in_this_experience)
        bucket = self.seen.setdefault(index, set())
        for image, label in zip(images, labels.tolist()):
            if label in new:
                bucket.add(image_digest(image, label))

    def summary(self) -> dict[str, dict]:
        """Return {experience: {"samples": count, "digest": ..., "digests": [...] when few}}."""
        record = {}
        for index, digests in sorted(self.seen.items()):
            entry = {"samples": len(digests), "digest": digest_of(digests)}
            if len(digests) <= LISTED_SAMPLES:
                entry["digests"] = sorted(digests)
            record[str(index)] = entry
        return record
