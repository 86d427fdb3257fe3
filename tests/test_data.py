"""Tests of the character data sources on the real data and on small files written here."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import zsl_cl.data.femnist as femnist_module
import zsl_cl.data.mnist as mnist_module
from zsl_cl.data import (
    CLASS_NAMES,
    SOURCES,
    CharacterData,
    DataError,
    check_classes,
    class_index,
    default_cache_dir,
    default_data_dir,
    load_source,
    split_by_writer,
    split_stratified,
)
from zsl_cl.data.cache import load_cached, save_cached

log = logging.getLogger(__name__)

FEMNIST_IMAGES = 31_078
FEMNIST_WRITERS = 374
MNIST_T10K_IMAGES = 10_000


# ---------------------------------------------------------------- helpers writing synthetic files


def write_idx(path: Path, array: np.ndarray, *, gz: bool = False, magic: int | None = None) -> Path:
    """Write a uint8 array as an IDX file (gzip-compressed when gz) and return its path."""
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else 0x0800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def digit_images(labels: list[int]) -> np.ndarray:
    """Return one (28, 28) image per label whose ink marks the label, so images are distinguishable."""
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 2:26, label + 1] = 200
    return images


def write_mnist_pair(data_dir: Path, split: str, labels: list[int], *, gz: bool = False) -> tuple[Path, Path]:
    """Write an MNIST images/labels pair for split "train" or "t10k" under data_dir/MNIST/raw."""
    raw = data_dir / "MNIST" / "raw"
    images = write_idx(raw / f"{split}-images-idx3-ubyte", digit_images(labels), gz=gz)
    label_file = write_idx(raw / f"{split}-labels-idx1-ubyte", np.array(labels), gz=gz)
    return images, label_file


def write_emnist_pair(data_dir: Path, split: str, stored: np.ndarray, labels: list[int], *, gz: bool = False) -> None:
    """Write an EMNIST byclass images/labels pair, where stored is the images exactly as the file stores them."""
    raw = data_dir / "EMNIST" / "raw"
    write_idx(raw / f"emnist-byclass-{split}-images-idx3-ubyte", stored, gz=gz)
    write_idx(raw / f"emnist-byclass-{split}-labels-idx1-ubyte", np.array(labels), gz=gz)


def top_bar_image() -> np.ndarray:
    """Return an upright (28, 28) image with ink only in rows 2-4: a horizontal bar at the top."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[2:5, 4:24] = 255
    return image


def leaf_user(images: list[np.ndarray], labels: list[int]) -> dict:
    """Return one LEAF user record from (28, 28) float images with 1.0 as the background."""
    return {"x": [image.ravel().tolist() for image in images], "y": labels}


def write_shard(path: Path, users: dict[str, dict], *, gz: bool = True) -> Path:
    """Write a LEAF shard holding the given user records."""
    shard = {
        "users": list(users),
        "num_samples": [len(record["y"]) for record in users.values()],
        "user_data": users,
    }
    text = json.dumps(shard).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def blank_leaf_image(ink_rows: slice = slice(10, 12)) -> np.ndarray:
    """Return a white (1.0) float image with black (0.0) ink in the given rows."""
    image = np.ones((28, 28), dtype=np.float64)
    image[ink_rows, 5:20] = 0.0
    return image


def ink_spread(images: np.ndarray) -> tuple[float, float]:
    """Return the standard deviation of ink positions along rows and along columns, pooled over images."""
    _, rows, cols = np.nonzero(images)
    return float(rows.std()), float(cols.std())


def assert_one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
    """Check that the error message is one line and contains every fragment."""
    message = str(error.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# ---------------------------------------------------------------- FEMNIST on the real data


@pytest.fixture(scope="session")
def femnist(shared_data: Path, data_cache_dir: Path) -> CharacterData:
    """Return the real FEMNIST source with seed 0, parsed once per session into the session cache."""
    start = time.perf_counter()
    data = load_source("femnist", shared_data, seed=0, cache_dir=data_cache_dir)
    log.info("first FEMNIST load took %.2f s", time.perf_counter() - start)
    return data


def test_femnist_counts(femnist: CharacterData) -> None:
    labels = np.concatenate([femnist.train_labels, femnist.test_labels])
    writers = np.concatenate([femnist.train_writers, femnist.test_writers])
    assert len(labels) == FEMNIST_IMAGES
    assert len(np.unique(writers)) == FEMNIST_WRITERS
    assert labels.dtype == np.int64
    assert sorted(np.unique(labels).tolist()) == list(range(len(CLASS_NAMES)))
    assert femnist.source == "femnist"
    assert "\n" not in femnist.description


def test_femnist_split_by_writer(femnist: CharacterData) -> None:
    train_writers = set(femnist.train_writers.tolist())
    test_writers = set(femnist.test_writers.tolist())
    assert train_writers.isdisjoint(test_writers)
    assert len(test_writers) == round(FEMNIST_WRITERS * 0.2)
    assert len(femnist.train_writers) == len(femnist.train_labels)
    assert len(femnist.test_writers) == len(femnist.test_labels)
    check_classes(femnist)


def test_femnist_seed_changes_split(femnist: CharacterData, shared_data: Path, data_cache_dir: Path) -> None:
    again = load_source("femnist", shared_data, seed=0, cache_dir=data_cache_dir)
    other = load_source("femnist", shared_data, seed=1, cache_dir=data_cache_dir)
    assert np.array_equal(again.test_writers, femnist.test_writers)
    assert set(other.test_writers.tolist()) != set(femnist.test_writers.tolist())
    assert len(other.train_labels) + len(other.test_labels) == FEMNIST_IMAGES


def test_femnist_images_binary_ink(femnist: CharacterData) -> None:
    for images in (femnist.train_images, femnist.test_images):
        assert images.dtype == np.uint8
        assert images.shape[1:] == (28, 28)
        assert set(np.unique(images).tolist()) == {0, 255}
        ink_fraction = float((images == 255).mean())
        assert 0.01 < ink_fraction < 0.5, ink_fraction


def test_femnist_images_upright(femnist: CharacterData) -> None:
    # A handwritten "1" is a vertical stroke, so its ink spreads more down the rows than across the columns.
    ones = femnist.train_images[femnist.train_labels == class_index("1")]
    row_spread, column_spread = ink_spread(ones)
    assert row_spread > 1.5 * column_spread, (row_spread, column_spread)


def test_femnist_cached_load_skips_parse(
    femnist: CharacterData, shared_data: Path, data_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(files: list[Path]) -> dict:
        raise AssertionError("the cached load parsed the shards again")

    monkeypatch.setattr(femnist_module, "parse_shards", fail)
    start = time.perf_counter()
    cached = load_source("femnist", shared_data, seed=0, cache_dir=data_cache_dir)
    log.info("cached FEMNIST load took %.2f s", time.perf_counter() - start)
    assert np.array_equal(cached.train_images, femnist.train_images)
    assert np.array_equal(cached.test_labels, femnist.test_labels)


# ---------------------------------------------------------------- MNIST on the real data


def test_mnist_t10k_split(shared_data: Path, data_cache_dir: Path) -> None:
    data = load_source("mnist", shared_data, seed=0, cache_dir=data_cache_dir)
    assert len(data.train_labels) + len(data.test_labels) == MNIST_T10K_IMAGES
    assert sorted(np.unique(data.train_labels).tolist()) == list(range(10))
    assert sorted(np.unique(data.test_labels).tolist()) == list(range(10))
    for digit in range(10):
        total = int((data.train_labels == digit).sum() + (data.test_labels == digit).sum())
        assert int((data.test_labels == digit).sum()) == round(total * 0.2)
    assert set(np.unique(data.train_images).tolist()) == {0, 255}
    assert "train-images-idx3-ubyte" in data.description
    assert "t10k-images-idx3-ubyte.gz" in data.description


def test_mnist_images_upright(shared_data: Path, data_cache_dir: Path) -> None:
    data = load_source("mnist", shared_data, seed=0, cache_dir=data_cache_dir)
    row_spread, column_spread = ink_spread(data.train_images[data.train_labels == class_index("1")])
    assert row_spread > 1.5 * column_spread, (row_spread, column_spread)


def test_mnist_seed_changes_split(shared_data: Path, data_cache_dir: Path) -> None:
    first = load_source("mnist", shared_data, seed=0, cache_dir=data_cache_dir)
    second = load_source("mnist", shared_data, seed=1, cache_dir=data_cache_dir)
    assert len(first.test_labels) == len(second.test_labels)
    assert not np.array_equal(first.test_images, second.test_images)


def test_mnist_cached_load_skips_parse(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_source("mnist", shared_data, cache_dir=tmp_path)
    def fail(*paths: Path) -> tuple:
        raise AssertionError("the cached load read the IDX files again")

    monkeypatch.setattr(mnist_module, "read_idx_pair", fail)
    second = load_source("mnist", shared_data, cache_dir=tmp_path)
    assert np.array_equal(first.train_images, second.train_images)


def test_mnist_emnist_joins_digits_letters(shared_data: Path, tmp_path: Path) -> None:
    # Real MNIST digits (linked, not copied) with a small synthetic EMNIST, because no EMNIST is on disk.
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (raw / name).symlink_to(shared_data / "MNIST" / "raw" / name)
    letters = [10, 11, 12, 10, 11, 12]  # A, B, C twice
    write_emnist_pair(tmp_path / "data", "train", np.zeros((6, 28, 28)), letters)

    data = load_source("mnist+emnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    expected = set(range(10)) | {class_index(c) for c in "ABC"}
    assert set(np.unique(data.train_labels).tolist()) == expected
    assert set(np.unique(data.test_labels).tolist()) == expected
    assert len(data.train_labels) + len(data.test_labels) == MNIST_T10K_IMAGES + len(letters)
    assert data.source == "mnist+emnist"
    assert "MNIST t10k" in data.description
    assert "EMNIST" in data.description


# ---------------------------------------------------------------- IDX parsing on synthetic files


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_emnist_upright_uppercase_only(tmp_path: Path, gz: bool) -> None:
    upright = top_bar_image()
    # byclass labels: 10 'A', 24 'O', 35 'Z', 3 digit '3', 36 'a', 61 'z'
    labels = [10, 24, 35, 3, 36, 61]
    stored = np.stack([upright.T] * len(labels))  # EMNIST files hold each image transposed
    write_emnist_pair(tmp_path, "train", stored, labels, gz=gz)
    write_emnist_pair(tmp_path, "test", stored[:2], [24, 36], gz=gz)

    data = load_source("emnist", tmp_path, cache_dir=tmp_path / "cache")
    assert data.train_labels.tolist() == [class_index("A"), class_index("0"), class_index("Z")]
    assert data.test_labels.tolist() == [class_index("0")]
    assert class_index("O") == class_index("0")
    for image in data.train_images:
        assert np.array_equal(image, upright)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_mnist_uses_own_train_test(tmp_path: Path, gz: bool) -> None:
    write_mnist_pair(tmp_path, "train", [0, 1, 2, 3], gz=gz)
    write_mnist_pair(tmp_path, "t10k", [4, 5], gz=gz)
    data = load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert data.train_labels.tolist() == [0, 1, 2, 3]
    assert data.test_labels.tolist() == [4, 5]
    assert "own train/test files" in data.description


def test_mnist_binarises_at_128(tmp_path: Path) -> None:
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 127
    images[:, 0, 1] = 128
    images[:, 0, 2] = 255
    raw = tmp_path / "MNIST" / "raw"
    for split in ("train", "t10k"):
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", np.array([7, 7]))
    data = load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert data.train_images[0, 0, :4].tolist() == [0, 255, 255, 0]
    assert set(np.unique(data.train_images).tolist()) == {0, 255}


def test_mnist_ignores_half_pair(tmp_path: Path) -> None:
    write_idx(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte", digit_images([1]))
    write_mnist_pair(tmp_path, "t10k", [0, 0, 1, 1, 2, 2], gz=True)
    data = load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert len(data.train_labels) + len(data.test_labels) == 6
    assert "train-labels-idx1-ubyte" in data.description


# ---------------------------------------------------------------- FEMNIST parsing on synthetic shards


def test_femnist_dedup_filter_invert(tmp_path: Path) -> None:
    ink_top, ink_low = blank_leaf_image(slice(2, 4)), blank_leaf_image(slice(20, 22))
    grey = np.ones((28, 28))
    grey[0, 0], grey[0, 1] = 0.5, 0.51  # ink 0.5 is kept, ink 0.49 is not
    # labels: 5 digit '5', 24 'O', 36 'a' (dropped)
    write_shard(tmp_path / "femnist" / "a" / "s0.json.gz", {"w1": leaf_user([ink_top, ink_low, grey], [5, 24, 36])})
    # The second shard repeats writer w1's first image and adds writer w2 with the same pixels.
    second = {"w1": leaf_user([ink_top], [5]), "w2": leaf_user([ink_top, grey], [5, 5])}
    write_shard(tmp_path / "femnist" / "b" / "s0.json", second, gz=False)

    data = load_source("femnist", tmp_path, cache_dir=tmp_path / "cache", test_fraction=0.5)
    writers = np.concatenate([data.train_writers, data.test_writers])
    labels = np.concatenate([data.train_labels, data.test_labels])
    images = np.concatenate([data.train_images, data.test_images])
    assert sorted(writers.tolist()) == ["w1", "w1", "w2", "w2"]
    assert sorted(labels.tolist()) == sorted([5, class_index("0"), 5, 5])
    assert set(data.train_writers.tolist()).isdisjoint(data.test_writers.tolist())

    grey_image = images[(writers == "w2") & (images[:, 0, 0] == 255)]
    assert len(grey_image) == 1
    assert grey_image[0, 0, :2].tolist() == [255, 0]
    top = images[(writers == "w1") & (labels == 5)][0]
    assert top[2:4, 5:20].min() == 255
    assert top.sum() == 255 * 2 * 15


def test_femnist_searches_data_dir_without_subfolder(tmp_path: Path) -> None:
    users = {f"w{i}": leaf_user([blank_leaf_image()], [i]) for i in range(4)}
    write_shard(tmp_path / "shards" / "s.json.gz", users)
    data = load_source("femnist", tmp_path, cache_dir=tmp_path / "cache")
    assert len(data.train_labels) + len(data.test_labels) == 4


# ---------------------------------------------------------------- cache


def counted_parse(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count calls of the FEMNIST shard parser."""
    calls: list[int] = []
    real = femnist_module.parse_shards

    def parse(files: list[Path]) -> dict:
        calls.append(len(files))
        return real(files)

    monkeypatch.setattr(femnist_module, "parse_shards", parse)
    return calls


def small_femnist(data_dir: Path) -> Path:
    """Write a two-writer FEMNIST shard and return its path."""
    users = {"w1": leaf_user([blank_leaf_image()], [1]), "w2": leaf_user([blank_leaf_image()], [2])}
    return write_shard(data_dir / "femnist" / "s.json.gz", users)


def test_cache_second_load_no_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_femnist(tmp_path / "data")
    calls = counted_parse(monkeypatch)
    load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache", seed=3)
    assert calls == [1]
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.suffix == ".tmp"] == []


def test_cache_tampered_payload_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_femnist(tmp_path / "data")
    calls = counted_parse(monkeypatch)
    original = load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("*.npz")

    with np.load(cache_file) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["labels"] = arrays["labels"] + 1  # keep both stored checksums, change the data
    np.savez(cache_file.with_suffix(""), **arrays)  # np.savez adds .npz back

    rebuilt = load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    assert calls == [1, 1]
    assert np.array_equal(rebuilt.train_labels, original.train_labels)


def test_cache_corrupt_file_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_femnist(tmp_path / "data")
    calls = counted_parse(monkeypatch)
    load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("*.npz")
    cache_file.write_bytes(cache_file.read_bytes()[:100])
    load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    assert calls == [1, 1]


def test_cache_changed_input_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shard = small_femnist(tmp_path / "data")
    calls = counted_parse(monkeypatch)
    load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    users = {f"w{i}": leaf_user([blank_leaf_image()], [3]) for i in range(5)}
    write_shard(shard, users)
    data = load_source("femnist", tmp_path / "data", cache_dir=tmp_path / "cache")
    assert calls == [1, 1]
    assert len(data.train_labels) + len(data.test_labels) == 5


def test_cache_unwritable_folder_still_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    small_femnist(tmp_path / "data")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    with caplog.at_level(logging.WARNING):
        data = load_source("femnist", tmp_path / "data", cache_dir=blocker)
    assert len(data.train_labels) + len(data.test_labels) == 2
    assert "failed to write cache file" in caplog.text


def test_cache_roundtrip_checks_inputs(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    arrays = {"a": np.arange(5), "names": np.array(["x", "y"])}
    save_cached(path, "inputs-1", arrays)
    loaded = load_cached(path, "inputs-1")
    assert loaded is not None and np.array_equal(loaded["a"], arrays["a"])
    assert loaded["names"].tolist() == ["x", "y"]
    assert load_cached(path, "inputs-2") is None


# ---------------------------------------------------------------- errors


def test_error_missing_folder(tmp_path: Path) -> None:
    for name in SOURCES:
        with pytest.raises(DataError) as error:
            load_source(name, tmp_path / "absent", cache_dir=tmp_path / "cache")
        assert_one_line(error, str(tmp_path / "absent"), "not found", "--data-dir")


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("mnist", ["MNIST", "t10k-images-idx3-ubyte[.gz]", "allow download"]),
        ("emnist", ["EMNIST", "emnist-byclass-train-images-idx3-ubyte[.gz]", "allow download"]),
        ("mnist+emnist", ["MNIST", "train-labels-idx1-ubyte[.gz]"]),
        ("femnist", ["*.json.gz", "--data-dir"]),
    ],
)
def test_error_empty_folder(tmp_path: Path, name: str, fragments: list[str]) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as error:
        load_source(name, tmp_path / "empty", cache_dir=tmp_path / "cache")
    assert_one_line(error, str(tmp_path / "empty"), *fragments)


def test_error_data_dir_is_file(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("not a folder")
    with pytest.raises(DataError) as error:
        load_source("mnist", path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(path), "is not a folder")


def test_error_femnist_lowercase_only(tmp_path: Path) -> None:
    write_shard(tmp_path / "femnist" / "s.json.gz", {"w1": leaf_user([blank_leaf_image()], [40])})
    with pytest.raises(DataError) as error:
        load_source("femnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(tmp_path / "femnist"), "no digits or uppercase letters")


def test_error_other_source_files(tmp_path: Path) -> None:
    small_femnist(tmp_path)
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(tmp_path / "MNIST" / "raw"), "t10k-labels-idx1-ubyte[.gz]")

    write_mnist_pair(tmp_path / "digits", "t10k", [1, 2])
    with pytest.raises(DataError) as error:
        load_source("femnist", tmp_path / "digits", cache_dir=tmp_path / "cache")
    assert_one_line(error, str(tmp_path / "digits"), "FEMNIST")


def test_error_truncated_gzip(tmp_path: Path) -> None:
    images, _ = write_mnist_pair(tmp_path, "t10k", [1, 2, 3], gz=True)
    images.write_bytes(images.read_bytes()[:-20])
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(images), "gzip", "replace")


def test_error_corrupt_gzip(tmp_path: Path) -> None:
    _, labels = write_mnist_pair(tmp_path, "t10k", [1, 2, 3], gz=True)
    labels.write_bytes(b"this is not gzip data at all")
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(labels), "gzip")


def test_error_wrong_idx_magic(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    images = write_idx(raw / "t10k-images-idx3-ubyte", digit_images([1, 2]), magic=0x0803 + 0x0100)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([1, 2]))
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(images), "magic number 0x00000903", "0x00000803")

    write_idx(raw / "t10k-images-idx3-ubyte", digit_images([1, 2]))
    labels = write_idx(raw / "t10k-labels-idx1-ubyte", np.array([[1, 2]]))  # 2 dimensions: magic 0x0802
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(labels), "magic number 0x00000802")


def test_error_idx_bad_count(tmp_path: Path) -> None:
    images, _ = write_mnist_pair(tmp_path, "t10k", [1, 2, 3])
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(images), "declares 3 items", "truncated or corrupt")

    images.write_bytes(images.read_bytes()[:10])
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(images), "shorter than its header")


def test_error_images_labels_mismatch(tmp_path: Path) -> None:
    images, _ = write_mnist_pair(tmp_path, "t10k", [1, 2, 3])
    labels = write_idx(tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte", np.array([1, 2]))
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(images), str(labels), "3 images", "2 labels")


def test_error_label_out_of_range(tmp_path: Path) -> None:
    _, labels = write_mnist_pair(tmp_path, "t10k", [1, 12])
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(labels), "label 12")


def test_error_wrong_image_size(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    images = write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((2, 32, 32)))
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([1, 2]))
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(images), "32x32")


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_error_invalid_json(tmp_path: Path, gz: bool) -> None:
    text = b'{"users": ["w1"], "user_data": {"w1": {"x": [[0.1, '
    path = tmp_path / "femnist" / ("s.json.gz" if gz else "s.json")
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(text) if gz else text)
    with pytest.raises(DataError) as error:
        load_source("femnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(path), "invalid JSON")


@pytest.mark.parametrize(
    ("shard", "fragment"),
    [
        ({"something": 1}, "'users' and 'user_data'"),
        ({"users": ["w1"], "user_data": {}}, "no 'x' and 'y'"),
        ({"users": ["w1"], "user_data": {"w1": {"x": [[0.5] * 10], "y": [1]}}}, "784"),
        ({"users": ["w1"], "user_data": {"w1": {"x": [[0.5] * 784], "y": [1, 2]}}}, "1 images but 2 labels"),
        ({"users": ["w1"], "user_data": {"w1": {"x": [[0.5] * 784], "y": [70]}}}, "outside 0-61"),
        ({"users": ["w1"], "user_data": {"w1": {"x": [[255.0] * 784], "y": [1]}}}, "outside [0, 1]"),
    ],
    ids=["no-keys", "no-user", "short-image", "count", "label", "pixel-range"],
)
def test_error_invalid_shard(tmp_path: Path, shard: dict, fragment: str) -> None:
    path = tmp_path / "femnist" / "s.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(shard))
    with pytest.raises(DataError) as error:
        load_source("femnist", tmp_path, cache_dir=tmp_path / "cache")
    assert_one_line(error, str(path), fragment)


def test_error_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as error:
        load_source("kmnist", tmp_path)
    assert not isinstance(error.value, DataError)
    assert_one_line(error, "'kmnist'", *SOURCES)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_error_invalid_test_fraction(tmp_path: Path, fraction: float) -> None:
    with pytest.raises(ValueError) as error:
        load_source("mnist", tmp_path, test_fraction=fraction)
    assert_one_line(error, repr(fraction), "between 0 and 1")


def test_check_classes_names_missing_class() -> None:
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, class_index("E")])
    data = CharacterData(images, labels, images[:2], labels[:2], source="mnist", description="test")
    check_classes(data, [0, 1])
    with pytest.raises(DataError) as error:
        check_classes(data, [0, class_index("E")])
    assert_one_line(error, "'E'", "no test images", "'mnist'")
    with pytest.raises(DataError):
        check_classes(data)


# ---------------------------------------------------------------- download (mocked, never over the network)


class FakeMnist:
    """Stands in for torchvision.datasets.MNIST: writes a small t10k pair instead of downloading."""

    calls: list[dict] = []

    def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
        FakeMnist.calls.append({"root": root, "download": download})
        write_mnist_pair(Path(root), "t10k", [0, 0, 1, 1], gz=True)


class FakeEmnist:
    """Stands in for torchvision.datasets.EMNIST: writes a small byclass train pair."""

    def __init__(self, root: str, split: str, train: bool = True, download: bool = False) -> None:
        assert split == "byclass"
        assert download
        write_emnist_pair(Path(root), "train", np.zeros((4, 28, 28)), [10, 10, 11, 11])


class OfflineDataset:
    """Stands in for a torchvision data set whose download fails the way an offline machine fails."""

    def __init__(self, root: str, *args: object, **kwargs: object) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirrors, all failed")


def test_download_mnist_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    FakeMnist.calls = []
    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMnist)
    data = load_source("mnist", tmp_path / "new", download=True, cache_dir=tmp_path / "cache")
    assert FakeMnist.calls == [{"root": str(tmp_path / "new"), "download": True}]
    assert len(data.train_labels) + len(data.test_labels) == 4


def test_download_emnist_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "EMNIST", FakeEmnist)
    data = load_source("emnist", tmp_path, download=True, cache_dir=tmp_path / "cache")
    assert sorted(np.concatenate([data.train_labels, data.test_labels]).tolist()) == [10, 10, 11, 11]


def test_download_not_tried_without_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "MNIST", OfflineDataset)
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert "download of" not in str(error.value)


def test_download_failure_is_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "MNIST", OfflineDataset)
    with pytest.raises(DataError) as error:
        load_source("mnist", tmp_path, download=True, cache_dir=tmp_path / "cache")
    assert_one_line(error, "download of MNIST", str(tmp_path), "RuntimeError", "--data-dir")


def test_download_skipped_when_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "MNIST", OfflineDataset)
    write_mnist_pair(tmp_path, "t10k", [3, 3, 4, 4])
    data = load_source("mnist", tmp_path, download=True, cache_dir=tmp_path / "cache")
    assert len(data.train_labels) == 2


# ---------------------------------------------------------------- splits, folders, imports


def test_split_stratified_per_class() -> None:
    labels = np.array([0] * 10 + [1] * 5 + [2])
    train, test = split_stratified(labels, 0.2, seed=0)
    assert np.intersect1d(train, test).size == 0
    assert len(train) + len(test) == len(labels)
    assert np.bincount(labels[test], minlength=3).tolist() == [2, 1, 0]
    other_train, _ = split_stratified(labels, 0.2, seed=5)
    assert len(other_train) == len(train)


def test_split_by_writer_disjoint() -> None:
    writers = np.array([f"w{i % 7}" for i in range(50)])
    train, test = split_by_writer(writers, 0.3, seed=2)
    assert set(writers[train]).isdisjoint(writers[test])
    assert len(set(writers[test])) == 2
    assert len(train) + len(test) == 50


def test_default_dirs_follow_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ZSL_CL_DATA", raising=False)
    assert default_data_dir() == tmp_path / "xdg" / "zsl-cl" / "data"
    assert default_cache_dir() == tmp_path / "xdg" / "zsl-cl" / "cache"
    monkeypatch.setenv("ZSL_CL_DATA", str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "zsl-cl" / "cache"


def test_import_skips_avalanche() -> None:
    code = "import sys, zsl_cl.data; print('avalanche' in sys.modules)"
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "False"
