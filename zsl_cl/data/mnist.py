"""MNIST digits, and the IDX reading that MNIST and EMNIST share.

Files are found in torchvision's layout, ``<data_dir>/<NAME>/raw/``, each
either plain or gzip-compressed. torchvision's IDX reader parses them after
this module has checked the header, because in torchvision 0.29 that reader
checks the header only with ``assert`` and skips the item count check for
image and label files.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .cache import cache_path, inputs_checksum, load_or_build
from .classes import class_index
from .errors import DataError

__all__ = ["IdxSet", "MNIST_FILES", "binarise", "load_idx_dataset", "load_idx_set", "load_mnist", "read_idx_pair"]

log = logging.getLogger(__name__)

IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
IMAGE_SIZE = 28

# Split name -> (images file, labels file), as torchvision names them after extraction.
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_FIX = "pass --data-dir pointing at a folder that contains MNIST/raw/, or allow download"

# (images (N, 28, 28) uint8, raw labels (N,) int64, labels file) -> (binarised images, 35-class labels)
Converter = Callable[[np.ndarray, np.ndarray, Path], tuple[np.ndarray, np.ndarray]]


@dataclass
class IdxSet:
    """The parsed splits of an IDX data set and the files they came from."""

    folder: Path
    # Split name ("train" or "test") -> (images (N, 28, 28) uint8 0/255, labels (N,) int64 in the 35-class space).
    parts: dict[str, tuple[np.ndarray, np.ndarray]]
    files: list[Path]
    missing: list[str] = field(default_factory=list)  # file names looked for and not found


def binarise(images: np.ndarray) -> np.ndarray:
    """Map uint8 images to 255 where the pixel is at least 128 (half the maximum) and 0 elsewhere."""
    return np.where(images >= 128, np.uint8(255), np.uint8(0))


def one_line(text: object) -> str:
    """Return text with line breaks collapsed to spaces, for one-line error messages."""
    return " ".join(str(text).split())


def find_file(folder: Path, name: str) -> Path | None:
    """Return folder/name, else folder/name.gz, else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_pairs(folder: Path, pairs: dict[str, tuple[str, str]]) -> tuple[dict[str, tuple[Path, Path]], list[str]]:
    """Return the splits whose images and labels files both exist, and the names of the missing files."""
    found: dict[str, tuple[Path, Path]] = {}
    missing: list[str] = []
    for split, names in pairs.items():
        paths = [find_file(folder, name) for name in names]
        missing += [name for name, path in zip(names, paths) if path is None]
        if paths[0] is not None and paths[1] is not None:
            found[split] = (paths[0], paths[1])
        elif paths[0] is not None or paths[1] is not None:
            present = paths[0] or paths[1]
            log.warning("ignoring the %s split because %s has no matching images/labels file", split, present)
    return found, missing


def decompress(path: Path, temp_dir: Path) -> Path:
    """Return an uncompressed copy of a .gz file in temp_dir, or path itself when it is not compressed."""
    if path.suffix != ".gz":
        return path
    target = temp_dir / path.stem
    try:
        with gzip.open(path, "rb") as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"truncated or corrupt gzip file {path} ({one_line(error)}): replace it with an intact copy"
        ) from None
    return target


def check_idx_header(path: Path, original_path: Path, magic: int) -> int:
    """Check an IDX file's magic number, image size and byte count, and return its item count.

    path is the uncompressed file to check, and original_path the file named in errors.
    """
    kind = "image" if magic == IMAGE_MAGIC else "label"
    header_bytes = 16 if magic == IMAGE_MAGIC else 8
    size = path.stat().st_size
    with open(path, "rb") as stream:
        header = stream.read(header_bytes)
    if len(header) < header_bytes:
        raise DataError(
            f"IDX {kind} file {original_path} is truncated ({size} bytes, shorter than its header): "
            "replace it with an intact copy"
        )

    found_magic, *dims = (int.from_bytes(header[i : i + 4], "big") for i in range(0, header_bytes, 4))
    if found_magic != magic:
        raise DataError(
            f"invalid IDX magic number 0x{found_magic:08x} in {original_path} "
            f"(expected 0x{magic:08x} for an {kind} file): "
            "replace it with an intact MNIST-format file"
        )
    if kind == "image" and dims[1:] != [IMAGE_SIZE, IMAGE_SIZE]:
        raise DataError(
            f"IDX image file {original_path} contains {dims[1]}x{dims[2]} images, expected 28x28: "
            "use 28x28 MNIST-format files"
        )

    expected = header_bytes + int(np.prod(dims))
    if size != expected:
        raise DataError(
            f"IDX {kind} file {original_path} declares {dims[0]} items ({expected} bytes) but has {size} bytes: "
            "the file is truncated or corrupt, replace it with an intact copy"
        )
    return dims[0]


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one IDX images file and its labels file into (N, 28, 28) uint8 images and (N,) int64 labels."""
    # Imported here so that importing zsl_cl.data stays cheap.
    from torchvision.datasets.mnist import read_image_file, read_label_file

    with tempfile.TemporaryDirectory(prefix="zsl-cl-idx-") as temp:
        plain_images = decompress(images_path, Path(temp))
        plain_labels = decompress(labels_path, Path(temp))
        image_count = check_idx_header(plain_images, images_path, IMAGE_MAGIC)
        label_count = check_idx_header(plain_labels, labels_path, LABEL_MAGIC)
        if image_count != label_count:
            raise DataError(
                f"{images_path} contains {image_count} images but {labels_path} contains {label_count} labels: "
                "replace both with files from the same release"
            )
        images = read_image_file(str(plain_images)).numpy().copy()
        labels = read_label_file(str(plain_labels)).numpy().astype(np.int64)
    return images, labels


def load_idx_set(
    folder: Path,
    pairs: dict[str, tuple[str, str]],
    convert: Converter,
    *,
    name: str,
    cache_dir: Path,
) -> IdxSet:
    """Parse every complete images/labels pair in folder, or load them from the cache.

    Returns an IdxSet with no parts when no pair is complete, and the
    caller decides whether to download or raise.
    """
    found, missing = find_pairs(folder, pairs)
    files = [path for pair in found.values() for path in pair]
    if not found:
        return IdxSet(folder=folder, parts={}, files=[], missing=missing)

    def build() -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for split, (images_path, labels_path) in found.items():
            images, labels = convert(*read_idx_pair(images_path, labels_path), labels_path)
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
            log.info("parsed %d images from %s", len(labels), images_path)
        return arrays

    checksum = inputs_checksum(folder, files, tag=name)
    arrays = load_or_build(cache_path(cache_dir, name, folder), checksum, build)
    parts = {split: (arrays[f"{split}_images"], arrays[f"{split}_labels"]) for split in found}
    return IdxSet(folder=folder, parts=parts, files=files, missing=missing)


def download_into(folder: Path, dataset: str, download: Callable[[], object], fix: str) -> None:
    """Run a torchvision download into folder and turn a failure into a one-line DataError."""
    log.info("downloading %s into %s", dataset, folder)
    try:
        download()
    except (OSError, RuntimeError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(
            f"download of {dataset} into {folder} failed ({type(error).__name__}: {one_line(error)}): "
            f"check the network connection, or {fix}"
        ) from None


def describe_missing(dataset: str, folder: Path, pairs: dict[str, tuple[str, str]], fix: str) -> DataError:
    """Return the error for a folder without a complete images/labels pair."""
    names = ", ".join(f"{name}[.gz]" for pair in pairs.values() for name in pair)
    return DataError(f"no complete {dataset} images/labels pair found in {folder} (looked for {names}): {fix}")


def convert_mnist(images: np.ndarray, labels: np.ndarray, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Binarise MNIST images and map digit labels 0-9 to the 35-class space."""
    # IDX labels are unsigned bytes, so only the maximum can be out of range.
    if labels.size and labels.max() > 9:
        raise DataError(
            f"MNIST labels file {labels_path} contains label {int(labels.max())}, outside 0-9: "
            "replace it with an intact MNIST labels file"
        )
    table = np.array([class_index(str(digit)) for digit in range(10)], dtype=np.int64)
    return binarise(images), table[labels]


def load_idx_dataset(
    folder: Path,
    pairs: dict[str, tuple[str, str]],
    convert: Converter,
    *,
    name: str,
    dataset: str,
    cache_dir: Path,
    fetch: Callable[[], object] | None,
    fix: str,
) -> IdxSet:
    """Load the complete pairs in folder, calling fetch (if given) once and retrying when none is complete.

    name keys the cache file and dataset names the data in messages.
    """
    result = load_idx_set(folder, pairs, convert, name=name, cache_dir=cache_dir)
    if not result.parts and fetch is not None:
        download_into(folder, dataset, fetch, fix)
        result = load_idx_set(folder, pairs, convert, name=name, cache_dir=cache_dir)
    if not result.parts:
        raise describe_missing(dataset, folder, pairs, fix)
    return result


def load_mnist(data_dir: Path, *, download: bool, cache_dir: Path) -> IdxSet:
    """Load the MNIST splits in <data_dir>/MNIST/raw, downloading them when none is complete and download is True."""

    def fetch() -> None:
        # Imported here so that importing zsl_cl.data stays cheap.
        from torchvision.datasets import MNIST

        MNIST(root=str(data_dir), train=True, download=True)

    folder = data_dir / "MNIST" / "raw"
    return load_idx_dataset(
        folder,
        MNIST_FILES,
        convert_mnist,
        name="mnist",
        dataset="MNIST",
        cache_dir=cache_dir,
        fetch=fetch if download else None,
        fix=MNIST_FIX,
    )
