"""Tests of the built-in latent-to-image decoders ``tconv`` and ``linear``."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from zsl_cl.core.cnn import FEATURE_DIM, CharacterCNN
from zsl_cl.core.ridge import fit_label_projection, one_hot
from zsl_cl.plugins import decoders
from zsl_cl.plugins.decoders import FeatureDecoder, LabelSpaceDecoder
from zsl_cl.protocols import Decoder, DecoderContext

DECODERS = [LabelSpaceDecoder, FeatureDecoder]

# Real-data settings: five digits that look unlike each other, 600 training images each.
REAL_CLASSES = [0, 1, 2, 4, 7]
IMAGES_PER_CLASS = 600
REAL_EPOCHS = 8
LATENT_SIZE = 256


def shared_data_dir() -> Path:
    configured = os.environ.get("ZSL_CL_SHARED_DATA", "")
    return Path(configured) if configured else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def synthetic_context(n: int = 40, label_dim: int = 5, latent_size: int = 8, epochs: int = 1, seed: int = 0) -> DecoderContext:
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 28, 28, generator=generator) > 0.8).to(torch.uint8) * 255  # (N, 28, 28), ink = 255
    features = torch.rand(n, FEATURE_DIM, generator=generator)  # (N, 1568)
    w_label = torch.randn(FEATURE_DIM, label_dim, generator=generator) / FEATURE_DIM**0.5  # (1568, |T|)
    w_latent = torch.randn(latent_size, label_dim, generator=generator)  # (k, |T|)
    return DecoderContext(images, features, features @ w_label, w_label, w_latent, epochs=epochs, seed=seed)


# Synthetic contexts: shapes, ranges, errors and seeding.


@pytest.mark.parametrize("decoder_class", DECODERS)
def test_decode_shape_range_and_device(decoder_class):
    context = synthetic_context()
    decoder = decoder_class()
    decoder.fit(context)
    images = decoder.decode(torch.randn(6, 8, dtype=torch.float64))

    assert isinstance(decoder, Decoder)
    assert images.shape == (6, 28, 28)
    assert images.dtype == torch.float32
    assert images.device.type == "cpu"
    assert float(images.min()) >= 0.0
    assert float(images.max()) <= 1.0
    assert len(decoder.epoch_losses) == context.epochs


@pytest.mark.parametrize("decoder_class", DECODERS)
def test_decode_before_fit_raises(decoder_class):
    decoder = decoder_class()

    with pytest.raises(RuntimeError, match="not fitted"):
        decoder.decode(torch.zeros(2, 8))


def test_direct_decoders_before_fit_raise():
    with pytest.raises(RuntimeError, match="not fitted"):
        LabelSpaceDecoder().decode_label_space(torch.zeros(2, 5))
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureDecoder().decode_features(torch.zeros(2, FEATURE_DIM))


@pytest.mark.parametrize("decoder_class", DECODERS)
def test_decode_rejects_wrong_latent_size(decoder_class):
    decoder = decoder_class()
    decoder.fit(synthetic_context(latent_size=8))

    with pytest.raises(ValueError, match=r"expected \(N, 8\)"):
        decoder.decode(torch.zeros(3, 7))
    with pytest.raises(ValueError, match=r"expected \(N, 8\)"):
        decoder.decode(torch.zeros(8))


def test_direct_decoders_shapes_and_width_checks():
    context = synthetic_context(label_dim=5)
    label_decoder = LabelSpaceDecoder()
    label_decoder.fit(context)
    feature_decoder = FeatureDecoder()
    feature_decoder.fit(context)

    assert label_decoder.decode_label_space(context.label_space[:4]).shape == (4, 28, 28)
    assert feature_decoder.decode_features(context.features[:4]).shape == (4, 28, 28)
    with pytest.raises(ValueError, match=r"expected \(N, 5\)"):
        label_decoder.decode_label_space(torch.zeros(4, 6))
    with pytest.raises(ValueError, match=rf"expected \(N, {FEATURE_DIM}\)"):
        feature_decoder.decode_features(torch.zeros(4, 5))


def test_linear_decoder_maps_label_space_through_pinv():
    context = synthetic_context()
    decoder = FeatureDecoder()
    decoder.fit(context)
    latents = torch.randn(3, 8)

    features = (latents @ context.w_latent) @ torch.linalg.pinv(context.w_label)  # (3, 1568)
    expected = decoder.decode_features(features)

    torch.testing.assert_close(decoder.decode(latents), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("field, bad_shape", [("features", (40, 100)), ("label_space", (40, 4)), ("w_latent", (8, 4)), ("images", (40, 32, 32))])
@pytest.mark.parametrize("decoder_class", DECODERS)
def test_fit_rejects_inconsistent_context(decoder_class, field, bad_shape):
    context = synthetic_context()
    setattr(context, field, torch.zeros(bad_shape))

    with pytest.raises(ValueError, match=field):
        decoder_class().fit(context)


@pytest.mark.parametrize("decoder_class", DECODERS)
def test_fit_rejects_float_images(decoder_class):
    context = synthetic_context()
    context.images = context.images.to(torch.float32) / 255

    with pytest.raises(ValueError, match="torch.uint8"):
        decoder_class().fit(context)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("decoder_class", DECODERS)
def test_fit_on_cuda_decodes_to_cpu(decoder_class):
    context = dataclasses.replace(synthetic_context(), device="cuda")
    decoder = decoder_class()
    decoder.fit(context)
    images = decoder.decode(torch.randn(3, 8, device="cuda"))

    assert images.device.type == "cpu"
    assert images.shape == (3, 28, 28)


@pytest.mark.parametrize("decoder_class", DECODERS)
def test_fit_rejects_zero_epochs(decoder_class):
    with pytest.raises(ValueError, match="epochs 0"):
        decoder_class().fit(synthetic_context(epochs=0))


@pytest.mark.parametrize("options", [{"learning_rate": 0.0}, {"batch_size": 0}])
@pytest.mark.parametrize("decoder_class", DECODERS)
def test_constructor_rejects_bad_options(decoder_class, options):
    with pytest.raises(ValueError, match="invalid"):
        decoder_class(**options)


@pytest.mark.parametrize("decoder_class", DECODERS)
def test_same_seed_gives_same_decoder(decoder_class):
    data = synthetic_context(epochs=2)
    latents = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    outputs = []
    for seed in (3, 3, 4):
        decoder = decoder_class()
        decoder.fit(dataclasses.replace(data, seed=seed))
        outputs.append(decoder.decode(latents))

    torch.testing.assert_close(outputs[0], outputs[1])
    assert not torch.allclose(outputs[0], outputs[2])


def test_fit_leaves_global_rng_unchanged():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    LabelSpaceDecoder().fit(synthetic_context())

    torch.testing.assert_close(torch.rand(3), expected)


# Plugin registration.


def test_decoders_registered_through_plugin_manager():
    from zsl_cl.plugin_manager import collect_components, get_plugin_manager

    registry = collect_components(get_plugin_manager()).decoder

    assert {"tconv", "linear"} <= set(registry.names())
    assert isinstance(registry.create("tconv"), LabelSpaceDecoder)
    assert isinstance(registry.create("linear"), FeatureDecoder)
    assert registry.get("tconv").description
    assert registry.get("linear").description


# Real FEMNIST digits: trained decoders must reconstruct recognisable class means.


@dataclasses.dataclass
class RealData:
    """A decoder context built from FEMNIST digits, with per-class references to compare reconstructions to."""

    context: DecoderContext
    class_means: torch.Tensor  # (C, 28, 28) mean training image of each class, ink = 1
    latent_means: torch.Tensor  # (C, k) mean SAE latent code of each class
    feature_means: torch.Tensor  # (C, 1568) mean CNN features of each class


def load_digit_subset() -> tuple[torch.Tensor, torch.Tensor]:
    """Return (C·600, 28, 28) uint8 training images of REAL_CLASSES and their class positions 0..C-1."""
    from zsl_cl.data import load_source

    data_dir = shared_data_dir()
    if not (data_dir / "femnist").is_dir():
        pytest.skip(f"FEMNIST data not found under {data_dir}: set ZSL_CL_SHARED_DATA to the shared data folder")
    # The parsed-data cache goes to a temp folder so reruns are fast and nothing is written beside the data.
    data = load_source("femnist", data_dir, seed=0, cache_dir=Path(tempfile.gettempdir()) / "zsl-cl-test-cache")

    rng = np.random.default_rng(0)
    chosen = [rng.permutation(np.flatnonzero(data.train_labels == c))[:IMAGES_PER_CLASS] for c in REAL_CLASSES]
    assert all(len(indices) == IMAGES_PER_CLASS for indices in chosen)
    images = torch.from_numpy(data.train_images[np.concatenate(chosen)])
    positions = torch.arange(len(REAL_CLASSES)).repeat_interleave(IMAGES_PER_CLASS)
    return images, positions


def cnn_features(images: torch.Tensor) -> torch.Tensor:
    """Return (N, 1568) features of a seeded, untrained CharacterCNN in eval mode: cheap but image-dependent."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cnn = CharacterCNN(torch.nn.Identity()).eval()
    with torch.no_grad():
        return cnn.features(images.unsqueeze(1).to(torch.float32) / 255)


@pytest.fixture(scope="module")
def real_data() -> RealData:
    from zsl_cl.core.sae import solve_sae
    from zsl_cl.plugins.solvers import EighSolver

    images, positions = load_digit_subset()
    features = cnn_features(images)  # (N, 1568)
    w_label = fit_label_projection(features, one_hot(positions, list(range(len(REAL_CLASSES)))), 50.0)  # (1568, C)
    label_space = features.to(torch.float64) @ w_label  # (N, C)
    sae = solve_sae(
        label_space, positions, k=LATENT_SIZE, lam=1.0, refinements=25, solver=EighSolver(), generator=torch.Generator().manual_seed(0)
    )
    latents = sae.encode(label_space).to(torch.float32)  # (N, k)

    context = DecoderContext(
        images, features, label_space.to(torch.float32), w_label.to(torch.float32), sae.w.to(torch.float32), epochs=REAL_EPOCHS, seed=0
    )
    means = [(images[positions == c].to(torch.float32) / 255).mean(0) for c in range(len(REAL_CLASSES))]
    return RealData(
        context=context,
        class_means=torch.stack(means),
        latent_means=torch.stack([latents[positions == c].mean(0) for c in range(len(REAL_CLASSES))]),
        feature_means=torch.stack([features[positions == c].mean(0) for c in range(len(REAL_CLASSES))]),
    )


@pytest.fixture(scope="module")
def fitted_decoders(real_data) -> dict[str, Decoder]:
    fitted = {}
    for decoder_class in DECODERS:
        decoder = decoder_class()
        decoder.fit(real_data.context)
        fitted[decoder.name] = decoder
    return fitted


def matching_classes(reconstructions: torch.Tensor, class_means: torch.Tensor) -> int:
    """Count reconstructions (C, 28, 28) whose nearest class-mean image by MSE is their own class's."""
    mse = (reconstructions[:, None] - class_means[None]).square().mean(dim=(2, 3))  # (C, C)
    return int((mse.argmin(dim=1) == torch.arange(len(class_means))).sum())


def min_pixel_std(reconstructions: torch.Tensor) -> float:
    return float(reconstructions.std(dim=(1, 2)).min())


# A decoder that ignores its input returns the same image for every class, so at most one
# class can match. These counts need reconstructions that depend on the class.
MIN_MATCHES = 4
# pinv(W_l) recovers only the part of the features that W_l keeps (a |T|-dimensional subspace
# of the 1568), so latents decoded by ``linear`` are weaker than features decoded directly.
MIN_LINEAR_LATENT_MATCHES = 3
# The smallest per-image pixel std measured 0.06-0.10 for trained decoders on these digits and 0.01-0.03 untrained.
MIN_PIXEL_STD = 0.04


def test_tconv_latent_means_look_like_their_class(real_data, fitted_decoders):
    reconstructions = fitted_decoders["tconv"].decode(real_data.latent_means)

    assert min_pixel_std(reconstructions) > MIN_PIXEL_STD
    assert matching_classes(reconstructions, real_data.class_means) >= MIN_MATCHES


def test_linear_feature_means_look_like_their_class(real_data, fitted_decoders):
    reconstructions = fitted_decoders["linear"].decode_features(real_data.feature_means)

    assert min_pixel_std(reconstructions) > MIN_PIXEL_STD
    assert matching_classes(reconstructions, real_data.class_means) >= MIN_MATCHES


def test_linear_latent_means_look_like_their_class(real_data, fitted_decoders):
    reconstructions = fitted_decoders["linear"].decode(real_data.latent_means)

    assert min_pixel_std(reconstructions) > MIN_PIXEL_STD
    assert matching_classes(reconstructions, real_data.class_means) >= MIN_LINEAR_LATENT_MATCHES


def test_trained_decoders_lower_their_loss(fitted_decoders):
    for name, decoder in fitted_decoders.items():
        losses = decoder.epoch_losses
        assert len(losses) == REAL_EPOCHS, name
        assert losses[-1] < 0.5 * losses[0], f"{name} epoch losses {losses}"


@pytest.mark.parametrize("decoder_class", DECODERS)
def test_untrained_decoder_fails_class_checks(real_data, decoder_class, monkeypatch):
    # Skipping the training loop leaves the seeded initial weights, which the checks above must reject.
    monkeypatch.setattr(decoders, "_train", lambda *args, **kwargs: [])
    decoder = decoder_class()
    decoder.fit(real_data.context)
    reconstructions = decoder.decode(real_data.latent_means)

    passes_std = min_pixel_std(reconstructions) > MIN_PIXEL_STD
    passes_matches = matching_classes(reconstructions, real_data.class_means) >= MIN_LINEAR_LATENT_MATCHES
    assert not (passes_std and passes_matches)
