"""Novelty scores, threshold calibration and AUROC."""

import pytest
import torch

from zsl_cl.core.novelty import calibrate_threshold, novelty_auroc, novelty_scores


def test_scores_zero_on_reference_direction():
    references = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    scores = novelty_scores(torch.tensor([[3.0, 0.0], [1.0, 1.0], [-1.0, 0.0]]), references)
    assert scores[0] == pytest.approx(0.0)
    assert scores[1] == pytest.approx(1 - 2**-0.5)
    assert scores[2] == pytest.approx(1.0)


def test_threshold_is_upper_quantile():
    scores = torch.arange(101, dtype=torch.float64)
    assert calibrate_threshold(scores, 0.05) == pytest.approx(95.0)


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1])
def test_threshold_rejects_bad_rate(rate):
    with pytest.raises(ValueError, match="false alarm rate"):
        calibrate_threshold(torch.ones(3), rate)


def test_auroc_perfect_and_chance():
    assert novelty_auroc(torch.tensor([0.1, 0.2]), torch.tensor([0.8, 0.9])) == pytest.approx(100.0)
    assert novelty_auroc(torch.tensor([0.8, 0.9]), torch.tensor([0.1, 0.2])) == pytest.approx(0.0)
    assert novelty_auroc(torch.tensor([0.5, 0.5]), torch.tensor([0.5, 0.5])) == pytest.approx(50.0)


def test_auroc_undefined_without_novel_samples():
    assert novelty_auroc(torch.tensor([0.1]), torch.tensor([])) is None
