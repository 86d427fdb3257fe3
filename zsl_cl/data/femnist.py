"""FEMNIST digits and uppercase letters from LEAF's JSON shards, with the writer of every image.

A LEAF shard is ``{"users": [...], "num_samples": [...], "user_data": {user:
{"x": [[784 floats]], "y": [ints]}}}``. Pixels are floats in [0, 1] with 1.0
for the white background, row-major and upright. Labels use EMNIST's byclass
numbering: 0-9 digits, 10-35 'A'-'Z', 36-61 'a'-'z'.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .cache import cache_path, inputs_checksum, load_or_build
from .emnist import BYCLASS_CLASSES, byclass_to_classes
from .errors import DataError

__all__ = ["FEMNIST_FIX", "FemnistSet", "find_shards", "load_femnist", "parse_shards"]

log = logging.getLogger(__name__)

FEMNIST_FIX = "pass --data-dir pointing at a folder that contains LEAF FEMNIST shards (*.json or *.json.gz)"
PIXELS = 28 * 28
DIGITS_AND_UPPERCASE = range(0, 36)


@dataclass
class FemnistSet:
    """Parsed FEMNIST digits and uppercase letters, de-duplicated, before any train/test split."""

    root: Path  # folder searched for shards
    files: list[Path]
    images: np.ndarray  # (N, 28, 28) uint8, ink 255, background 0
    labels: np.ndarray  # (N,) int64 in the 35-class space
    writers: np.ndarray  # (N,) str, LEAF user id of each image


def find_shards(data_dir: Path) -> tuple[Path, list[Path]]:
    """Return the folder to search (<data_dir>/femnist if it exists, else data_dir) and its shards, sorted."""
    root = data_dir / "femnist" if (data_dir / "femnist").is_dir() else data_dir
    files = {path for pattern in ("*.json", "*.json.gz") for path in root.rglob(pattern) if path.is_file()}
    return root, sorted(files)


def read_shard(path: Path) -> dict:
    """Read one shard, plain or gzip-compressed, into its JSON object."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                text = stream.read()
        else:
            text = path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"failed to read FEMNIST shard {path} ({error}): replace it with an intact copy") from None
    try:
        shard = json.loads(text)
    except ValueError as error:
        raise DataError(f"invalid JSON in FEMNIST shard {path} ({error}): replace it with an intact copy") from None
    if not isinstance(shard, dict) or not isinstance(shard.get("users"), list):
        shard = {}
    if not isinstance(shard.get("user_data"), dict):
        raise DataError(f"FEMNIST shard {path} lacks the LEAF keys 'users' and 'user_data': use LEAF FEMNIST shards")
    return shard


def user_samples(shard: dict, path: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Yield each user's digits and uppercase letters.

    Each item is (writer, pixels (K, 784) float32, byclass labels (K,) int64).
    """
    for user in shard["users"]:
        record = shard["user_data"].get(user)
        if not isinstance(record, dict) or "x" not in record or "y" not in record:
            raise DataError(
                f"FEMNIST shard {path} has no 'x' and 'y' data for user {user!r}: replace it with an intact copy"
            )
        labels = np.asarray(record["y"], dtype=np.int64)
        if labels.ndim != 1 or len(labels) != len(record["x"]):
            raise DataError(
                f"FEMNIST shard {path}: user {user!r} has {len(record['x'])} images but {labels.size} labels: "
                "replace it with an intact copy"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(BYCLASS_CLASSES)):
            raise DataError(
                f"FEMNIST shard {path}: user {user!r} has a label outside 0-61: use LEAF FEMNIST shards"
            )

        keep = np.flatnonzero(labels < DIGITS_AND_UPPERCASE.stop)
        if keep.size == 0:
            continue
        try:
            pixels = np.asarray([record["x"][i] for i in keep], dtype=np.float32)
        except (TypeError, ValueError):
            pixels = None
        if pixels is None or pixels.shape != (keep.size, PIXELS):
            raise DataError(
                f"FEMNIST shard {path}: user {user!r} has images that are not lists of {PIXELS} numbers: "
                "use LEAF FEMNIST shards of 28x28 images"
            )
        if pixels.min() < 0.0 or pixels.max() > 1.0:
            raise DataError(
                f"FEMNIST shard {path}: user {user!r} has pixel values outside [0, 1]: use LEAF FEMNIST shards"
            )
        yield user, pixels, labels[keep]


def parse_shards(files: list[Path]) -> dict[str, np.ndarray]:
    """Parse shards into de-duplicated, binarised digits and uppercase letters.

    The same (writer, image) pair can appear more than once, within a shard
    or in shards from overlapping samples, so a pair is kept only the first
    time it is seen, in the order of files.
    """
    seen: set[tuple[str, bytes]] = set()
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    writers: list[str] = []
    for path in files:
        for writer, pixels, user_labels in user_samples(read_shard(path), path):
            # A 16-byte digest per image keeps the set small, where 31k full images (3,136 bytes each) take ~100 MB.
            fresh = []
            for i, row in enumerate(pixels):
                key = (writer, hashlib.blake2b(row.tobytes(), digest_size=16).digest())
                if key not in seen:
                    seen.add(key)
                    fresh.append(i)
            images.append(pixels[fresh])
            labels.append(user_labels[fresh])
            writers += [writer] * len(fresh)

    pixels = np.concatenate(images) if images else np.zeros((0, PIXELS), np.float32)
    byclass = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    _, classes = byclass_to_classes(byclass, DIGITS_AND_UPPERCASE)
    # The background is 1.0, so the ink is 1 - x, binarised at half its maximum (0.5).
    ink = np.where(1.0 - pixels >= 0.5, np.uint8(255), np.uint8(0)).reshape(-1, 28, 28)
    return {"images": ink, "labels": classes, "writers": np.array(writers, dtype=str)}


def load_femnist(data_dir: Path, *, cache_dir: Path) -> FemnistSet:
    """Load FEMNIST digits and uppercase letters from the shards under data_dir, or from the cache."""
    root, files = find_shards(data_dir)
    if not files:
        # FEMNIST has no torchvision download, so the fix is always a folder of shards.
        raise DataError(f"no LEAF FEMNIST shards (*.json, *.json.gz) found under {root}: {FEMNIST_FIX}")

    def build() -> dict[str, np.ndarray]:
        arrays = parse_shards(files)
        log.info("parsed %d FEMNIST images from %d shards under %s", len(arrays["labels"]), len(files), root)
        return arrays

    checksum = inputs_checksum(root, files, tag="femnist")
    arrays = load_or_build(cache_path(cache_dir, "femnist", root), checksum, build)
    if len(arrays["labels"]) == 0:
        raise DataError(f"the FEMNIST shards under {root} contain no digits or uppercase letters: {FEMNIST_FIX}")
    return FemnistSet(
        root=root, files=files, images=arrays["images"], labels=arrays["labels"], writers=arrays["writers"]
    )
