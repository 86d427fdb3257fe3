"""One seed of a reproduction: train the backbone once, then evaluate independent reference draws.

The study's static protocol has two experiences: experience 0 contains the seen
classes T, and experience 1 contains every unseen class U at once. The backbone,
W_l and the SAE are fitted on experience 0 once per seed. Each reference draw
then discards the unseen references and adapts to experience 1 again, which
costs one feature pass over the drawn samples and no gradient steps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from zsl_cl.core.mappings import five_mappings, predict
from zsl_cl.data import CharacterData, default_data_dir, load_source, size_normalised
from zsl_cl.data.classes import SPLITS, parse_classes
from zsl_cl.reproduce.confusion import confusion_counts
from zsl_cl.reproduce.request import ReproduceRequest
from zsl_cl.streams import StreamLayout, build_stream, plan_stream

__all__ = ["DrawResult", "SeedSession", "limit_train_per_class", "train_seed", "adapt_draw", "evaluate_draw"]


@dataclass
class DrawResult:
    """The measurements of one reference draw on one seed's backbone."""

    seed: int
    draw: int
    shots: int
    mappings: dict[str, dict[str, float]]  # the five mappings: {"U->U": {"top1": %, "top3": %}, ...}
    confusion: np.ndarray  # (C, C) Ω→Ω top-1 counts: row = true class, column = assigned class, both in Ω order
    unseen_top1: dict[int, float]  # U→U top-1 % of each unseen class's test samples


@dataclass
class SeedSession:
    """A trained strategy with the data and stream it was trained on."""

    seed: int
    data: CharacterData
    layout: StreamLayout
    benchmark: object  # the Avalanche benchmark: train_stream and test_stream, two experiences each
    strategy: object  # SAEStrategy, fitted on experience 0

    @property
    def seen(self) -> list[int]:
        return sorted(self.layout.base_classes)

    @property
    def unseen(self) -> list[int]:
        return sorted(self.layout.new_classes)

    @property
    def omega(self) -> list[int]:
        return self.seen + self.unseen


def limit_train_per_class(data: CharacterData, limit: int | None, seed: int) -> CharacterData:
    """Keep at most ``limit`` training images per class, drawn with the seed, and leave the test split unchanged."""
    if limit is None:
        return data
    rng = np.random.default_rng(seed)
    kept = []
    for label in np.unique(data.train_labels):
        members = np.flatnonzero(data.train_labels == label)
        kept.append(np.sort(rng.choice(members, size=min(limit, len(members)), replace=False)))
    rows = np.sort(np.concatenate(kept))
    description = f"{data.description}; at most {limit} training images per class, drawn with seed {seed}"
    return replace(data, train_images=data.train_images[rows], train_labels=data.train_labels[rows], description=description,
                   train_writers=None if data.train_writers is None else data.train_writers[rows])


def train_seed(request: ReproduceRequest, seed: int, plugin_manager, components, progress_plugins=(), on_start=None) -> SeedSession:
    """Load the data split of ``seed``, build the static stream and fit the backbone, W_l and the SAE.

    ``on_start`` is called once the data has loaded, right before training, so
    a data error is reported before any progress line.
    """
    from zsl_cl.training.strategy import SAEStrategy

    unseen = parse_classes(SPLITS[request.run])
    layout = plan_stream(split=request.run, classes_per_exp=len(unseen), seed=seed)
    data = load_source(request.source, request.data_dir or default_data_dir(), seed=seed, download=request.download)
    data = limit_train_per_class(data, request.train_per_class, seed)
    # The session keeps the normalised images, which the figures decode and show.
    data = size_normalised(data, request.config.size_normalise)
    benchmark = build_stream(data, layout)

    strategy = SAEStrategy(config=request.config, components=components, hook=plugin_manager.hook, seed=seed,
                           device=request.device, plugins=progress_plugins)
    if on_start is not None:
        on_start()
    strategy.train(benchmark.train_stream[0])
    return SeedSession(seed=seed, data=data, layout=layout, benchmark=benchmark, strategy=strategy)


def adapt_draw(session: SeedSession, draw: int, shots: int) -> None:
    """Replace the unseen references with reference draw ``draw`` of ``shots`` samples per class."""
    strategy = session.strategy
    strategy.reference_draw = draw
    # NOTE: SAEStrategy reads the shot count from its frozen config, so a new config is swapped in.
    strategy.config = replace(strategy.config, shots=shots)
    strategy.reset_references()
    strategy.train(session.benchmark.train_stream[1])


def evaluate_draw(session: SeedSession, draw: int, shots: int) -> DrawResult:
    """Adapt to reference draw ``draw`` and measure the five mappings, the Ω→Ω confusion and U→U per class."""
    adapt_draw(session, draw, shots)
    strategy = session.strategy
    test_stream = session.benchmark.test_stream
    latents, labels = strategy.test_latents(test_stream)  # (N, k), (N,)
    mappings = five_mappings(latents, labels, strategy.references, session.seen, session.unseen, strategy.distance)

    omega_predicted = _predict_within(latents, labels, strategy, session.omega)
    omega_labels = labels[torch.isin(labels, torch.tensor(session.omega))]
    confusion = confusion_counts(omega_labels.numpy(), omega_predicted.numpy(), session.omega)

    unseen_mask = torch.isin(labels, torch.tensor(session.unseen))
    unseen_predicted = _predict_within(latents, labels, strategy, session.unseen)
    unseen_top1 = _per_class_accuracy(labels[unseen_mask], unseen_predicted, session.unseen)
    return DrawResult(session.seed, draw, shots, mappings, confusion, unseen_top1)


def _predict_within(latents: torch.Tensor, labels: torch.Tensor, strategy, classes: list[int]) -> torch.Tensor:
    """Return the (n,) top-1 class of each test sample of ``classes`` against the references of ``classes``.

    The samples and references are selected exactly as the five mappings select them, so a
    distance that standardises over the evaluated batch (zscore-cosine) scores the same batch.
    """
    mask = torch.isin(labels, torch.tensor(classes))
    references = strategy.references.subset(classes)
    return predict(latents[mask], references, strategy.distance, k=1)[:, 0].cpu()


def _per_class_accuracy(labels: torch.Tensor, predicted: torch.Tensor, classes: list[int]) -> dict[int, float]:
    """Return the top-1 accuracy (%) of each class's samples."""
    accuracy = {}
    for c in classes:
        members = labels == c
        accuracy[c] = 100.0 * float((predicted[members] == c).float().mean())
    return accuracy
