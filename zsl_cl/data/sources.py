"""Character data sources by name, each returned as binarised 28x28 train and test images in the 35-class space."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .classes import CLASS_NAMES
from .emnist import load_emnist
from .errors import DataError
from .femnist import load_femnist
from .mnist import IdxSet, load_mnist

__all__ = [
    "SOURCES",
    "CharacterData",
    "check_classes",
    "default_cache_dir",
    "default_data_dir",
    "load_source",
    "split_by_writer",
    "split_stratified",
]

log = logging.getLogger(__name__)

# "mnist+emnist" (MNIST digits with EMNIST uppercase letters) comes first because it is the default.
SOURCES = ("mnist+emnist", "femnist", "mnist", "emnist")


@dataclass
class CharacterData:
    """Train and test images of one source: 28x28 uint8, ink 255 and background 0, with 35-class labels."""

    train_images: np.ndarray  # (N, 28, 28) uint8, values 0 or 255
    train_labels: np.ndarray  # (N,) int64 in the 35-class space
    test_images: np.ndarray  # (M, 28, 28) uint8, values 0 or 255
    test_labels: np.ndarray  # (M,) int64 in the 35-class space
    source: str
    description: str  # one line: the files and the split used
    train_writers: np.ndarray | None = None  # (N,) str writer ids, for sources that record writers
    test_writers: np.ndarray | None = None  # (M,) str writer ids


def user_cache_home() -> Path:
    """Return $XDG_CACHE_HOME when it is set to an absolute path, else ~/.cache."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"


def default_data_dir() -> Path:
    """Return $ZSL_CL_DATA when set, else <user cache folder>/zsl-cl/data."""
    configured = os.environ.get("ZSL_CL_DATA", "")
    return Path(configured).expanduser() if configured else user_cache_home() / "zsl-cl" / "data"


def default_cache_dir() -> Path:
    """Return <user cache folder>/zsl-cl/cache, the folder for parsed-data caches.

    Caches never go beside the data, because data folders may be read-only.
    """
    return user_cache_home() / "zsl-cl" / "cache"


def check_test_fraction(test_fraction: float) -> None:
    """Reject a test fraction outside the open interval (0, 1)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"invalid test fraction {test_fraction!r}: use a number between 0 and 1, such as 0.2")


def split_count(total: int, test_fraction: float) -> int:
    """Return how many of total items go to test.

    That is the rounded fraction, but at least 1 and at most total - 1 when total >= 2, and 0 below that.
    """
    if total < 2:
        return 0
    return min(max(round(total * test_fraction), 1), total - 1)


def split_stratified(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices per class at random, returning sorted (train indices, test indices).

    Each class with at least 2 samples puts at least one in each split, and
    a class with one sample keeps it in train.
    """
    rng = np.random.default_rng(seed)
    test: list[np.ndarray] = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        test.append(members[: split_count(len(members), test_fraction)])
    test_indices = np.sort(np.concatenate(test)) if test else np.zeros(0, np.int64)
    train_indices = np.setdiff1d(np.arange(len(labels)), test_indices)
    return train_indices, test_indices


def split_by_writer(writers: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices so that no writer is in both splits, returning sorted (train indices, test indices).

    The writers, not the samples, are split by test_fraction.
    """
    names = np.unique(writers)
    rng = np.random.default_rng(seed)
    test_writers = rng.permutation(names)[: split_count(len(names), test_fraction)]
    in_test = np.isin(writers, test_writers)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def check_classes(data: CharacterData, classes: Iterable[int] | None = None) -> None:
    """Raise DataError naming the first class that has no training or no test images.

    classes defaults to every class present in either split.
    """
    train_present = set(np.unique(data.train_labels).tolist())
    test_present = set(np.unique(data.test_labels).tolist())
    wanted = sorted(train_present | test_present) if classes is None else list(classes)
    for label in wanted:
        for split, present in (("training", train_present), ("test", test_present)):
            if label not in present:
                raise DataError(
                    f"class {CLASS_NAMES[label]!r} has no {split} images in source {data.source!r}: "
                    "choose a source that contains it, another --seed, or fewer classes"
                )


def split_idx_set(result: IdxSet, source: str, dataset: str, test_fraction: float, seed: int) -> CharacterData:
    """Use an IDX data set's own train/test files, or split the one split that exists per class with the seed."""
    names = ", ".join(path.name for path in result.files)
    if "train" in result.parts and "test" in result.parts:
        train_images, train_labels = result.parts["train"]
        test_images, test_labels = result.parts["test"]
        split = "its own train/test files"
    else:
        images, labels = next(iter(result.parts.values()))
        train, test = split_stratified(labels, test_fraction, seed)
        train_images, train_labels = images[train], labels[train]
        test_images, test_labels = images[test], labels[test]
        missing = ", ".join(result.missing)
        split = f"split per class with seed {seed}, test fraction {test_fraction} (not found: {missing})"

    description = f"{dataset} {names} from {result.folder}, {split}"
    return CharacterData(train_images, train_labels, test_images, test_labels, source=source, description=description)


def load_femnist_source(data_dir: Path, cache_dir: Path, test_fraction: float, seed: int) -> CharacterData:
    """Load FEMNIST digits and uppercase letters split by writer."""
    parsed = load_femnist(data_dir, cache_dir=cache_dir)
    train, test = split_by_writer(parsed.writers, test_fraction, seed)
    test_writer_count = len(np.unique(parsed.writers[test]))
    description = (
        f"FEMNIST {len(parsed.files)} LEAF shards under {parsed.root}: "
        f"{len(parsed.labels)} digits and uppercase letters from {len(np.unique(parsed.writers))} writers, "
        f"{test_writer_count} writers held out for test with seed {seed}"
    )
    return CharacterData(
        parsed.images[train],
        parsed.labels[train],
        parsed.images[test],
        parsed.labels[test],
        source="femnist",
        description=description,
        train_writers=parsed.writers[train],
        test_writers=parsed.writers[test],
    )


def concatenate(first: CharacterData, second: CharacterData, source: str) -> CharacterData:
    """Join two sources' train and test splits; writer ids are dropped because not every source has them."""
    return CharacterData(
        np.concatenate([first.train_images, second.train_images]),
        np.concatenate([first.train_labels, second.train_labels]),
        np.concatenate([first.test_images, second.test_images]),
        np.concatenate([first.test_labels, second.test_labels]),
        source=source,
        description=f"{first.description}; {second.description}",
    )


def check_data_dir(data_dir: Path, name: str, download: bool) -> None:
    """Reject a data folder that does not exist, unless the source can download into it."""
    if data_dir.is_dir():
        return
    if download and name != "femnist":
        return
    problem = "is not a folder" if data_dir.exists() else "not found"
    fix = "pass --data-dir pointing at the folder that contains the data"
    if name != "femnist":
        fix += ", or allow download"
    raise DataError(f"data folder {data_dir} {problem}: {fix}")


def load_source(
    name: str,
    data_dir: Path | str,
    *,
    seed: int = 0,
    download: bool = False,
    cache_dir: Path | None = None,
    test_fraction: float = 0.2,
) -> CharacterData:
    """Load a character source by name from data_dir, splitting it into train and test with the seed.

    "mnist" and "emnist" use their own train/test files when both exist and
    otherwise split the one that exists per class. "femnist" is split by
    writer. Only "mnist", "emnist" and "mnist+emnist" can download, through
    torchvision, and only when download is True. Raises DataError for missing
    or corrupt data and ValueError for an unknown name or test fraction.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown data source {name!r}: use one of {', '.join(SOURCES)}")
    check_test_fraction(test_fraction)
    data_dir = Path(data_dir).expanduser()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    check_data_dir(data_dir, name, download)

    if name == "femnist":
        return load_femnist_source(data_dir, cache_dir, test_fraction, seed)
    parts: list[CharacterData] = []
    if name in ("mnist", "mnist+emnist"):
        digits = load_mnist(data_dir, download=download, cache_dir=cache_dir)
        parts.append(split_idx_set(digits, name, "MNIST", test_fraction, seed))
    if name in ("emnist", "mnist+emnist"):
        letters = load_emnist(data_dir, download=download, cache_dir=cache_dir)
        parts.append(split_idx_set(letters, name, "EMNIST byclass uppercase", test_fraction, seed))
    return parts[0] if len(parts) == 1 else concatenate(parts[0], parts[1], name)
