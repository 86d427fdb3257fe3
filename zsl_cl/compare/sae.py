"""The SAE strategy as a compared learner: adaptation through SAEStrategy, metrics from its own predictions."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from zsl_cl.core.mappings import predict
from zsl_cl.training.strategy import SAEStrategy

__all__ = ["RecordedSAE", "SAELearner"]


class RecordedSAE(SAEStrategy):
    """SAEStrategy that shows the recorder every sample it encodes while adapting to a later experience."""

    def __init__(self, *, recorder=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.recorder = recorder
        self._adapting = None  # the later experience being adapted to, while _train_exp runs

    def _train_exp(self, experience, eval_streams=None, **kwargs):
        self._adapting = experience if experience.current_experience > 0 else None
        try:
            super()._train_exp(experience, eval_streams, **kwargs)
        finally:
            self._adapting = None

    def extract_features(self, dataset, *args, **kwargs):
        if self._adapting is not None and self.recorder is not None:
            for batch in DataLoader(dataset, batch_size=1024, shuffle=False):
                self.recorder.add(self._adapting, batch[0], torch.as_tensor(batch[1]))
        return super().extract_features(dataset, *args, **kwargs)


class SAELearner:
    """Train through SAEStrategy and score its predictions over all seen test data at once.

    The z-scored cosine distance normalises each reference's scores over
    every evaluated sample, so the SAE cannot be scored one mini-batch at a
    time in Avalanche's eval loop. The seen classes' test data are scored
    together, as ``zsl-cl evaluate`` does, and the per-experience accuracies
    are the shares of correct predictions within each experience's samples.
    """

    avalanche_metrics = False

    def __init__(self, strategy: RecordedSAE) -> None:
        self.strategy = strategy

    def train(self, experience) -> None:
        self.strategy.train(experience)

    def evaluate(self, test_experiences) -> dict:
        latents, labels = self.strategy.test_latents(test_experiences)  # (N, k), (N,)
        predicted = predict(latents, self.strategy.references, self.strategy.distance, k=1)[:, 0]
        correct = (predicted == labels.to(predicted.device)).float()  # (N,)

        per_experience, start = {}, 0
        for experience in test_experiences:
            size = len(experience.dataset)
            per_experience[experience.current_experience] = 100.0 * float(correct[start : start + size].mean())
            start += size
        assert start == len(correct), "test latents must cover exactly the evaluated experiences"
        return {"per_experience": per_experience, "seen": 100.0 * float(correct.mean())}
