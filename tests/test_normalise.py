"""Size normalisation: crop to the ink, fit a 20x20 box, centre in 28x28."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsl_cl.data import load_source, size_normalise


def ink_box(image: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(image)
    return rows.min(), rows.max(), cols.min(), cols.max()


def test_small_corner_square_fills_the_box_centred() -> None:
    images = np.zeros((1, 28, 28), np.uint8)
    images[0, 1:6, 2:7] = 255  # a 5x5 square in the top-left corner
    top, bottom, left, right = ink_box(size_normalise(images)[0])
    assert (bottom - top + 1, right - left + 1) == (20, 20)
    assert (top, left) == (4, 4)


def test_aspect_ratio_kept() -> None:
    images = np.zeros((1, 28, 28), np.uint8)
    images[0, 10:20, 12:14] = 255  # 10 tall, 2 wide
    top, bottom, left, right = ink_box(size_normalise(images)[0])
    assert bottom - top + 1 == 20
    assert right - left + 1 == 4


def test_blank_image_stays_blank_and_output_is_binary() -> None:
    images = np.zeros((2, 28, 28), np.uint8)
    images[1, 3:9, 3:5] = 255
    out = size_normalise(images)
    assert not out[0].any()
    assert set(np.unique(out)) <= {0, 255}
    assert out.shape == images.shape
    assert out.dtype == np.uint8


def test_box_out_of_range_rejected() -> None:
    with pytest.raises(ValueError, match="invalid box 40: use a size from 1 to the image size 28"):
        size_normalise(np.zeros((1, 28, 28), np.uint8), box=40)


def test_femnist_characters_get_mnist_like_boxes(shared_data: Path, data_cache_dir: Path) -> None:
    data = load_source("femnist", shared_data, cache_dir=data_cache_dir)
    images = data.train_images[:500]
    before = np.array([max(b - t, r - l) + 1 for t, b, l, r in map(ink_box, images)])
    after = np.array([max(b - t, r - l) + 1 for t, b, l, r in map(ink_box, size_normalise(images))])
    # FEMNIST keeps the written size; after normalisation the longer side is the 20-pixel box.
    assert before.std() > 2
    assert np.mean(np.abs(after - 20) <= 1) > 0.95
