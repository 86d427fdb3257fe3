"""The five mappings and top-k accuracy, on a hand-made case with a known answer."""

import torch

from zsl_cl.core.mappings import five_mappings, predict, topk_accuracy
from zsl_cl.core.references import ReferenceSet


class NegativeEuclidean:
    def fit(self, latents, labels):
        pass

    def scores(self, samples, references):
        return -torch.cdist(samples, references)


def line_references():
    # Classes 0 and 1 are seen (T), 2 and 3 unseen (U), placed at x = 0, 10, 20, 30.
    vectors = torch.tensor([[0.0], [10.0], [20.0], [30.0]])
    return ReferenceSet([0, 1, 2, 3], vectors, ["mean", "mean", "shot", "shot"])


def test_predict_returns_global_ids():
    refs = ReferenceSet([7, 12], torch.tensor([[0.0], [1.0]]), ["mean", "shot"])
    assert predict(torch.tensor([[0.9], [0.1]]), refs, NegativeEuclidean()).squeeze(1).tolist() == [12, 7]


def test_topk_counts_second_choice():
    refs = line_references()
    # The sample of class 1 sits at 14: nearest is class 1 (10), but class 2 (20) is second.
    samples = torch.tensor([[14.0], [16.0]])
    labels = torch.tensor([1, 1])
    accuracy = topk_accuracy(samples, labels, refs, NegativeEuclidean(), ks=(1, 2))
    assert accuracy == {"top1": 50.0, "top2": 100.0}


def test_five_mappings_known_answer():
    refs = line_references()
    # One unseen sample (true class 2) sits at 12: nearest of all references is seen class 1,
    # so it is right in U->U but wrong in U->Omega; that is the generalised zero-shot bias.
    samples = torch.tensor([[1.0], [9.0], [12.0], [29.0]])
    labels = torch.tensor([0, 1, 2, 3])
    result = five_mappings(samples, labels, refs, seen=[0, 1], unseen=[2, 3], distance=NegativeEuclidean())
    assert result["U->U"]["top1"] == 100.0
    assert result["U->Omega"]["top1"] == 50.0
    assert result["T->T"]["top1"] == 100.0
    assert result["T->Omega"]["top1"] == 100.0
    assert result["Omega->Omega"]["top1"] == 75.0
    assert result["U->Omega"]["top3"] == 100.0


def test_top3_with_fewer_references_is_total():
    refs = ReferenceSet([0, 1], torch.tensor([[0.0], [1.0]]), ["mean", "mean"])
    accuracy = topk_accuracy(torch.tensor([[5.0]]), torch.tensor([0]), refs, NegativeEuclidean())
    assert accuracy["top1"] == 0.0
    assert accuracy["top3"] == 100.0
