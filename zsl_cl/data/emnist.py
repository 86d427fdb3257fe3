"""EMNIST uppercase letters from the byclass split, in torchvision's layout <data_dir>/EMNIST/raw/."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from .classes import class_index
from .errors import DataError
from .mnist import IdxSet, binarise, load_idx_dataset

__all__ = ["BYCLASS_CLASSES", "EMNIST_FILES", "byclass_to_classes", "load_emnist"]

# Split name -> (images file, labels file), as torchvision names them after extracting EMNIST's gzip.zip.
EMNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("emnist-byclass-train-images-idx3-ubyte", "emnist-byclass-train-labels-idx1-ubyte"),
    "test": ("emnist-byclass-test-images-idx3-ubyte", "emnist-byclass-test-labels-idx1-ubyte"),
}
EMNIST_FIX = "pass --data-dir pointing at a folder that contains EMNIST/raw/, allow download with --download, or use --source femnist with LEAF FEMNIST shards"

# The byclass label numbering, shared by LEAF's FEMNIST: 0-9 digits, 10-35 'A'-'Z', 36-61 'a'-'z'.
BYCLASS_CLASSES = string.digits + string.ascii_uppercase + string.ascii_lowercase
UPPERCASE_LABELS = range(10, 36)


def byclass_to_classes(labels: np.ndarray, keep: range) -> tuple[np.ndarray, np.ndarray]:
    """Select labels in keep and map them to the 35-class space ("O" joins class "0").

    Returns the boolean mask of kept samples (N,) and their 35-class labels (M,).
    """
    table = np.full(len(BYCLASS_CLASSES), -1, dtype=np.int64)
    for label in keep:
        table[label] = class_index(BYCLASS_CLASSES[label])
    mask = (labels >= keep.start) & (labels < keep.stop)
    return mask, table[labels[mask]]


def convert_emnist(images: np.ndarray, labels: np.ndarray, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Keep the uppercase letters, turn the images upright, binarise them and map the labels."""
    # IDX labels are unsigned bytes, so only the maximum can be out of range.
    if labels.size and labels.max() >= len(BYCLASS_CLASSES):
        raise DataError(
            f"EMNIST labels file {labels_path} contains label {int(labels.max())}, outside the byclass range 0-61: "
            "use the byclass files, emnist-byclass-*"
        )
    mask, classes = byclass_to_classes(labels, UPPERCASE_LABELS)
    # EMNIST stores each image transposed (column-major), so swap the row and column axes: (M, 28, 28).
    upright = np.ascontiguousarray(images[mask].transpose(0, 2, 1))
    return binarise(upright), classes


def load_emnist(data_dir: Path, *, download: bool, cache_dir: Path) -> IdxSet:
    """Load EMNIST byclass uppercase letters from <data_dir>/EMNIST/raw, downloading them if missing and allowed."""

    def fetch() -> None:
        # Imported here so that importing zsl_cl.data stays cheap.
        from torchvision.datasets import EMNIST

        EMNIST(root=str(data_dir), split="byclass", train=True, download=True)

    return load_idx_dataset(
        data_dir / "EMNIST" / "raw",
        EMNIST_FILES,
        convert_emnist,
        name="emnist-byclass-uppercase",
        dataset="EMNIST",
        cache_dir=cache_dir,
        fetch=fetch if download else None,
        fix=EMNIST_FIX,
    )
