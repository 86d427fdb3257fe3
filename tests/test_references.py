"""Reference rebuild: class means for seen classes, the labelled shots for new ones."""

import pytest
import torch

from zsl_cl.core.references import build_references, class_means


def test_class_means_per_class():
    latents = torch.tensor([[0.0, 0.0], [2.0, 2.0], [10.0, 0.0]])
    labels = torch.tensor([4, 4, 9])
    means = class_means(latents, labels, [9, 4])
    assert means.tolist() == [[10.0, 0.0], [1.0, 1.0]]


def test_class_means_missing_class_raises():
    with pytest.raises(ValueError, match="class 5"):
        class_means(torch.zeros(2, 3), torch.tensor([1, 1]), [5])


def test_rebuild_seen_means_and_shots():
    seen_latents = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0]])
    seen_labels = torch.tensor([0, 0, 1])
    shot_latents = torch.tensor([[7.0, 7.0], [-1.0, 2.0]])
    shot_labels = torch.tensor([20, 30])
    refs = build_references(seen_latents, seen_labels, [0, 1], shot_latents, shot_labels, [20, 30])
    assert refs.classes == [0, 1, 20, 30]
    assert refs.sources == ["mean", "mean", "shot", "shot"]
    assert refs.vectors.tolist() == [[2.0, 0.0], [0.0, 5.0], [7.0, 7.0], [-1.0, 2.0]]


def test_rebuild_averages_several_shots():
    refs = build_references(
        torch.zeros(1, 2), torch.tensor([0]), [0],
        torch.tensor([[2.0, 0.0], [4.0, 2.0]]), torch.tensor([3, 3]), [3],
    )
    assert refs.subset([3]).vectors.tolist() == [[3.0, 1.0]]


def test_subset_keeps_requested_order():
    refs = build_references(torch.eye(3), torch.tensor([0, 1, 2]), [0, 1, 2], torch.empty(0, 3), torch.empty(0, dtype=torch.long), [])
    sub = refs.subset([2, 0])
    assert sub.classes == [2, 0]
    assert sub.vectors.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
