"""Head growth by calibrated imprinting: global class ids and unchanged old decisions."""

from types import SimpleNamespace

import pytest
import torch

from zsl_cl._avalanche import IncrementalClassifier
from zsl_cl.training.head import calibrate_head, head_predictions, imprint_rows


def grow(head, classes):
    head.train()
    head.adaptation(SimpleNamespace(classes_in_this_experience=classes))
    head.eval()


@pytest.fixture
def trained_head():
    # A head that separates three classes, as SGD would leave it: each row points at its class.
    torch.manual_seed(0)
    head = IncrementalClassifier(6, initial_out_features=2)
    grow(head, [0, 3, 5])
    prototypes = torch.eye(6)[:3] * 3  # (3, 6)
    base_labels = torch.tensor([0, 3, 5] * 20)
    base_features = prototypes[torch.arange(60) % 3] + 0.3 * torch.rand(60, 6)
    with torch.no_grad():
        head.classifier.weight[[0, 3, 5]] = prototypes
        head.classifier.bias[[0, 3, 5]] = 0.0
    return head, base_features, base_labels


def test_growth_predicts_global_ids(trained_head):
    head, base_features, base_labels = trained_head
    calibration = calibrate_head(head, base_features, base_labels, [0, 3, 5])
    grow(head, [12, 20])
    reference = torch.tensor([[0, 0, 0, 5.0, 0, 0], [0, 0, 0, 0, 0, 5.0]])
    imprinted = imprint_rows(head, reference, torch.tensor([12, 20]), calibration)
    assert imprinted == [12, 20]

    predicted = head_predictions(head, reference, k=1)[:, 0]
    # Each reference is classified as its own new class, by global id, not by a restarted index 0, 1.
    assert predicted.tolist() == [12, 20]
    everything = head_predictions(head, torch.rand(200, 6), k=1)[:, 0]
    assert set(everything.tolist()) <= {0, 3, 5, 12, 20}


def test_growth_keeps_old_decisions_when_new_class_loses(trained_head):
    head, base_features, base_labels = trained_head
    before = head_predictions(head, base_features, k=1)[:, 0]
    old_logits = head(base_features)[:, [0, 3, 5]].clone()
    calibration = calibrate_head(head, base_features, base_labels, [0, 3, 5])
    grow(head, [12])
    imprint_rows(head, torch.tensor([[0.0, 0, 0, 0, 9.0, 0]]), torch.tensor([12]), calibration)

    after = head_predictions(head, base_features, k=1)[:, 0]
    assert torch.equal(head(base_features)[:, [0, 3, 5]], old_logits)
    unchanged = after != 12
    assert unchanged.any()
    assert torch.equal(after[unchanged], before[unchanged])


def test_imprinted_row_is_calibrated(trained_head):
    head, base_features, base_labels = trained_head
    calibration = calibrate_head(head, base_features, base_labels, [0, 3, 5])
    grow(head, [7])
    reference = torch.tensor([[1.0, 2.0, 0.0, 0.0, 0.0, 3.0]])
    imprint_rows(head, reference, torch.tensor([7]), calibration)
    logits = head.classifier(torch.cat([reference, calibration.feature_mean[None]]))[:, 7]
    # The reference scores like a trained class on its own samples, the mean feature like another class.
    assert logits[0].item() == pytest.approx(calibration.own_logit, abs=1e-5)
    assert logits[1].item() == pytest.approx(calibration.other_logit, abs=1e-5)
