"""The default preset's strategy on real data: widened latents, reference views, calibration, transduction."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from zsl_cl.config import get_preset
from zsl_cl.core.cnn import FEATURE_DIM
from zsl_cl.reproduce.draws import adapt_draw, evaluate_draw, train_seed
from zsl_cl.reproduce.request import ReproduceRequest
from zsl_cl.streams import draw_references


@pytest.fixture(scope="module")
def session(shared_data, data_cache_dir):
    """The default preset trained for 2 epochs on R0, seed 0, with 150 training images per class."""
    from zsl_cl.plugin_manager import collect_components, get_plugin_manager

    request = ReproduceRequest(
        config=get_preset("default", epochs=2), output_dir=Path("unused"), run="R0", source="femnist",
        data_dir=shared_data, download=False, train_per_class=150,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(data_cache_dir))
        plugin_manager = get_plugin_manager()
        return train_seed(request, 0, plugin_manager, collect_components(plugin_manager))


def with_settings(session, **changes):
    session.strategy.config = replace(session.strategy.config, **changes)


@pytest.fixture(autouse=True)
def restore_config(session):
    config = session.strategy.config
    yield
    session.strategy.config = config


def test_widened_code_is_sae_code_and_centred_features(session) -> None:
    strategy = session.strategy
    assert strategy.latent_dim == strategy.config.k + FEATURE_DIM
    features, _ = strategy.test_features(session.benchmark.test_stream[:1])
    codes = strategy.encode(features[:50])  # (50, k + 1568)
    k, w = strategy.config.k, strategy.config.feature_weight
    assert torch.allclose(codes.norm(dim=1), torch.ones(50, dtype=codes.dtype))
    assert torch.allclose(codes[:, :k].norm(dim=1) ** 2, torch.full((50,), 1 - w, dtype=codes.dtype))
    sae_only = strategy.sae.encode(features[:50].double() @ strategy.label_projection)
    assert torch.allclose(torch.nn.functional.normalize(codes[:, :k], dim=1), torch.nn.functional.normalize(sae_only, dim=1))


def test_sae_codes_for_decoders(session) -> None:
    strategy = session.strategy
    adapt_draw(session, draw=0, shots=1)
    codes = strategy.sae_codes(strategy.references.vectors)  # (C, k)
    assert codes.shape == (len(strategy.references), strategy.config.k)
    assert torch.allclose(codes.norm(dim=1), torch.full((len(codes),), strategy.code_norm, dtype=codes.dtype))


def test_reference_views_seeded_and_distinct(session) -> None:
    strategy = session.strategy
    experience = session.benchmark.train_stream[1]
    picked = draw_references(experience.dataset.targets, session.unseen, 1, 0, 1, 0)
    subset = torch.utils.data.Subset(experience.dataset, picked)
    plain, _ = strategy.extract_features(subset)
    viewed, _ = strategy.extract_features(subset, views=8, key=(0, 1, 0))
    again, _ = strategy.extract_features(subset, views=8, key=(0, 1, 0))
    assert torch.equal(viewed, again)
    assert not torch.allclose(viewed, plain)


def test_offset_measured_on_held_out_base_data(session) -> None:
    strategy = session.strategy
    held_out = len(strategy.validation_dataset)
    assert held_out > 0
    assert len(strategy.base_labels) > 8 * held_out
    assert 0 < strategy.seen_offset < 1
    adapt_draw(session, draw=0, shots=1)
    offsets = strategy.references.offsets.tolist()
    assert offsets == [-strategy.seen_offset if s == "mean" else 0.0 for s in strategy.references.sources]


def test_calibration_raises_new_class_recall(session) -> None:
    calibrated = evaluate_draw(session, draw=0, shots=1).mappings
    offset = session.strategy.seen_offset
    session.strategy.seen_offset = 0.0
    try:
        plain = evaluate_draw(session, draw=0, shots=1).mappings
    finally:
        session.strategy.seen_offset = offset
    assert calibrated["U->Omega"]["top1"] > plain["U->Omega"]["top1"] + 5
    assert calibrated["U->U"] == plain["U->U"]  # only seen-class scores move


def test_transductive_refinement_helps(session) -> None:
    one_shot = evaluate_draw(session, draw=0, shots=1).mappings
    with_settings(session, transductive=True)
    targets = torch.tensor(session.benchmark.train_stream[1].dataset.targets)
    transductive = evaluate_draw(session, draw=0, shots=1).mappings
    pseudo = session.strategy.pseudo_labels
    assert len(pseudo) == len(targets)
    # The assignments agree with the hidden labels far above chance, and the references improve.
    assert (pseudo == targets).float().mean().item() > 2 / len(session.unseen)
    assert transductive["U->U"]["top1"] > one_shot["U->U"]["top1"]


def test_transductive_refinement_ignores_the_labels_it_reads(session, monkeypatch) -> None:
    with_settings(session, transductive=True)
    strategy = session.strategy
    adapt_draw(session, draw=0, shots=1)
    honest = strategy.references.vectors.clone()
    pool_size = len(session.benchmark.train_stream[1].dataset)
    extract = strategy.extract_features

    def scrambled(dataset, *args, **kwargs):
        features, labels = extract(dataset, *args, **kwargs)
        if len(dataset) == pool_size:  # the unlabelled pool: hand back wrong labels
            labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
        return features, labels

    monkeypatch.setattr(strategy, "extract_features", scrambled)
    adapt_draw(session, draw=0, shots=1)
    assert torch.equal(strategy.references.vectors, honest)
