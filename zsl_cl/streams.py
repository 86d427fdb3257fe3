"""The emnist-incremental stream: base classes first, then a few new classes per experience."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from zsl_cl.data.classes import CLASS_NAMES, NUM_CLASSES, SPLITS, parse_classes

__all__ = ["STREAMS", "StreamLayout", "plan_stream", "build_stream", "draw_references", "split_validation", "CharacterDataset"]

STREAMS = ("emnist-incremental",)


@dataclass(frozen=True)
class StreamLayout:
    """Which classes each experience introduces; experience 0 holds the base classes."""

    experiences: tuple[tuple[int, ...], ...]

    @property
    def base_classes(self) -> list[int]:
        return list(self.experiences[0])

    @property
    def new_classes(self) -> list[int]:
        return [c for exp in self.experiences[1:] for c in exp]

    def names(self, index: int) -> list[str]:
        return [CLASS_NAMES[c] for c in self.experiences[index]]


def plan_stream(
    *,
    unseen: str | None = None,
    split: str | None = None,
    base_classes: int | None = None,
    classes_per_exp: int = 3,
    seed: int = 0,
) -> StreamLayout:
    """Choose the new classes and their arrival order, with the seed.

    Exactly one of ``unseen`` (characters), ``split`` (R0 or R1) or
    ``base_classes`` (how many base classes to draw) may be given; with none,
    the R0 split is used. The new classes arrive in an order shuffled by the seed.
    """
    given = [name for name, value in (("--unseen", unseen), ("--split", split), ("--base-classes", base_classes)) if value is not None]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} both choose the new classes: pass only one of them")
    if seed < 0:
        raise ValueError(f"invalid seed {seed}: use a seed >= 0")
    rng = np.random.default_rng(seed)
    new = _choose_new_classes(unseen, split, base_classes, rng)

    if not 1 <= classes_per_exp <= len(new):
        raise ValueError(f"invalid --classes-per-exp {classes_per_exp}: use a value from 1 to {len(new)}, the number of new classes")
    order = [new[i] for i in rng.permutation(len(new))]
    base = tuple(c for c in range(NUM_CLASSES) if c not in new)
    chunks = [tuple(order[i : i + classes_per_exp]) for i in range(0, len(order), classes_per_exp)]
    return StreamLayout(experiences=(base, *chunks))


def _choose_new_classes(unseen, split, base_classes, rng) -> list[int]:
    if base_classes is not None:
        if not 1 <= base_classes < NUM_CLASSES:
            raise ValueError(f"invalid --base-classes {base_classes}: use a value from 1 to {NUM_CLASSES - 1}")
        base = set(rng.choice(NUM_CLASSES, size=base_classes, replace=False).tolist())
        return [c for c in range(NUM_CLASSES) if c not in base]
    if unseen is None:
        split = split or "R0"
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        unseen = SPLITS[split]
    new = parse_classes(unseen)
    if not new:
        raise ValueError("--unseen is empty: list at least one character, for example --unseen 2679ELVWY")
    if len(new) == NUM_CLASSES:
        raise ValueError(f"--unseen {unseen!r} lists every class: leave at least one base class to train on")
    return new


class CharacterDataset(Dataset):
    """Binary 28x28 images as (1, 28, 28) float tensors in {0, 1}, with a ``targets`` list for Avalanche."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).float().div_(255.0)  # (N, 1, 28, 28)
        self.targets = [int(y) for y in labels]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.images[index], self.targets[index]


def build_stream(data, layout: StreamLayout):
    """Build the Avalanche class-incremental benchmark for ``layout`` over a CharacterData source."""
    from zsl_cl._avalanche import class_incremental_benchmark

    _check_every_class_has_data(data, layout)
    order = [c for exp in layout.experiences for c in exp]
    return class_incremental_benchmark(
        {
            "train": CharacterDataset(data.train_images, data.train_labels),
            "test": CharacterDataset(data.test_images, data.test_labels),
        },
        class_order=order,
        num_classes_per_exp=[len(exp) for exp in layout.experiences],
    )


def _check_every_class_has_data(data, layout: StreamLayout) -> None:
    for split, labels in (("training", data.train_labels), ("test", data.test_labels)):
        present = set(np.unique(labels).tolist())
        for exp in layout.experiences:
            for c in exp:
                if c not in present:
                    raise ValueError(
                        f"class {CLASS_NAMES[c]!r} has no {split} data in source {data.source!r}: "
                        "choose a source that holds every class, or leave that class out"
                    )


def draw_references(targets, classes, shots: int | None, seed: int, experience: int, draw: int = 0) -> list[int]:
    """Draw ``shots`` sample indices per class from ``targets``, the same for every strategy given the seed.

    The generator is keyed by (seed, experience, draw), so the draw for one
    experience does not depend on how many draws came before it, and
    ``draw`` selects one of several independent reference draws. With
    ``shots=None`` every sample of each class is returned (the full budget).
    """
    targets = np.asarray(list(targets))
    rng = np.random.default_rng([seed, experience, draw])
    picked: list[int] = []
    for c in sorted(classes):
        members = np.flatnonzero(targets == c)
        if shots is None:
            picked += members.tolist()
            continue
        if len(members) < shots:
            raise ValueError(f"class {CLASS_NAMES[c]!r} has {len(members)} training samples, fewer than --shots {shots}")
        picked += rng.choice(members, size=shots, replace=False).tolist()
    return picked


def split_validation(targets, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split sample indices into (train, validation), holding out ``fraction`` of each class with the seed."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"invalid validation fraction {fraction}: use a value between 0 and 1")
    targets = np.asarray(list(targets))
    rng = np.random.default_rng([seed, 7919])  # a stream of its own, apart from the reference draws
    train, validation = [], []
    for c in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == c))
        held = max(1, int(round(fraction * len(members))))
        validation += members[:held].tolist()
        train += members[held:].tolist()
    return sorted(train), sorted(validation)
