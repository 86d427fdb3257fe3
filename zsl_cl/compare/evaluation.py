"""Evaluation of the Avalanche baselines: the EvaluationPlugin and the seen-class restriction."""

from __future__ import annotations

import warnings

import torch

from zsl_cl._avalanche import SupervisedPlugin

__all__ = ["make_evaluator", "SeenClassesOnly"]


def make_evaluator(loggers=()):
    """Return an EvaluationPlugin with accuracy, forgetting and BWT per experience and per stream."""
    from zsl_cl.compare._avalanche import EvaluationPlugin, accuracy_metrics, bwt_metrics, forgetting_metrics

    with warnings.catch_warnings():
        # Without --loggers the metrics are only read back, so no logger is intended.
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(
            accuracy_metrics(experience=True, stream=True),
            forgetting_metrics(experience=True, stream=True),
            bwt_metrics(experience=True, stream=True),
            loggers=list(loggers),
        )


class SeenClassesOnly(SupervisedPlugin):
    """Restrict evaluation predictions to the classes trained on so far.

    Class-incremental evaluation scores each test sample against the classes
    seen so far. The softmax heads already do this, because Avalanche's
    IncrementalClassifier masks classes it has not trained on. StreamingLDA
    and iCaRL's nearest-mean classifier keep all-zero rows for classes not
    seen yet, and a zero row can outscore every real class, so those rows
    are set to the lowest float here for every strategy alike.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[int] = set()

    def after_training_exp(self, strategy, **kwargs):
        self.seen |= set(strategy.experience.classes_in_this_experience)

    def after_eval_forward(self, strategy, **kwargs):
        scores = strategy.mb_output  # (B, C) scores indexed by global class id
        unseen = [c for c in range(scores.shape[1]) if c not in self.seen]
        if unseen:
            scores[:, unseen] = torch.finfo(scores.dtype).min
