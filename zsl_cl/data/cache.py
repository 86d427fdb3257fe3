"""A cache of parsed arrays in .npz files, valid while the files they were parsed from are unchanged.

Each cache file stores two sha256 checksums beside the arrays. The inputs
checksum covers the format version, a tag and the bytes of every input file,
so editing, adding or removing an input invalidates the cache. The payload
checksum covers the stored arrays, so a cache file edited after it was
written is detected and rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import DataError

__all__ = ["FORMAT_VERSION", "cache_path", "inputs_checksum", "load_cached", "load_or_build", "save_cached"]

log = logging.getLogger(__name__)

# Bump when the parsing or the stored layout changes, so old cache files are rebuilt.
FORMAT_VERSION = 1

_INPUTS_KEY = "inputs_sha256"
_PAYLOAD_KEY = "payload_sha256"
_CHUNK_BYTES = 1 << 20

Arrays = dict[str, np.ndarray]


def cache_path(cache_dir: Path, name: str, data_folder: Path) -> Path:
    """Return the cache file for one source parsed from one data folder.

    The file name carries a digest of the folder's absolute path, so two data
    folders never share a cache file.
    """
    folder_digest = hashlib.sha256(str(data_folder.resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{name}-{folder_digest}.npz"


def inputs_checksum(root: Path, files: Sequence[Path], tag: str) -> str:
    """Return the sha256 of the format version, the tag, and each file's path relative to root and bytes."""
    digest = hashlib.sha256(f"zsl-cl cache format {FORMAT_VERSION}\n{tag}\n".encode())
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\n".encode())
        try:
            with open(path, "rb") as stream:
                for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
                    digest.update(chunk)
        except OSError as error:
            raise DataError(
                f"failed to read data file {path} ({error.strerror or error}): check that it exists and is readable"
            ) from None
        digest.update(b"\n")
    return digest.hexdigest()


def payload_checksum(arrays: Arrays) -> str:
    """Return the sha256 of the arrays' names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}\n{array.dtype.str}\n{array.shape}\n".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def load_cached(path: Path, inputs: str) -> Arrays | None:
    """Return the arrays stored at path, or None when the file is missing, unreadable, stale or altered."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        log.warning("rebuilding unreadable cache file %s (%s)", path, error)
        return None

    stored_inputs = arrays.pop(_INPUTS_KEY, None)
    stored_payload = arrays.pop(_PAYLOAD_KEY, None)
    if stored_inputs is None or str(stored_inputs) != inputs:
        log.info("rebuilding cache file %s because its input files changed", path)
        return None
    if stored_payload is None or str(stored_payload) != payload_checksum(arrays):
        log.warning("rebuilding cache file %s because its arrays do not match their stored checksum", path)
        return None
    return arrays


def save_cached(path: Path, inputs: str, arrays: Arrays) -> None:
    """Write the arrays and both checksums to path atomically.

    The file is written under a temporary name in the same folder and renamed
    with os.replace, so a reader never sees a partly written cache file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**arrays, _INPUTS_KEY: np.array(inputs), _PAYLOAD_KEY: np.array(payload_checksum(arrays))}
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def load_or_build(path: Path, inputs: str, build: Callable[[], Arrays]) -> Arrays:
    """Return the cached arrays at path, or call build, cache its result and return it.

    A cache folder that cannot be written is logged and skipped, because the
    parsed data is still correct without a cache.
    """
    arrays = load_cached(path, inputs)
    if arrays is not None:
        log.info("loaded parsed data from cache file %s", path)
        return arrays

    arrays = build()
    try:
        save_cached(path, inputs, arrays)
    except OSError as error:
        log.warning("failed to write cache file %s (%s), continuing without a cache", path, error)
    return arrays
