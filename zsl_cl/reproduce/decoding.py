"""Decoders for the figures: fitted on the base classes of one seed, chosen through the plugin registry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from zsl_cl.protocols import DecoderContext
from zsl_cl.streams import CharacterDataset

__all__ = ["FEATURE_DECODER", "FigureDecoders", "decoder_context", "fit_decoders", "encode_images", "decode_label_space"]

# The decoder whose ``decode_features`` reconstructs an image from its own CNN features.
FEATURE_DECODER = "linear"


@dataclass
class FigureDecoders:
    """The decoder that draws latent codes, and the feature decoder that draws CNN features."""

    latent: object  # Decoder: decode((N, k) latents) -> (N, 28, 28)
    features: object  # has decode_features((N, 1568) features) -> (N, 28, 28)


def decoder_context(session, epochs: int) -> DecoderContext:
    """Collect the base-class training images, their features and the fitted projections of ``session``."""
    strategy = session.strategy
    rows = np.flatnonzero(np.isin(session.data.train_labels, session.seen))
    images = session.data.train_images[rows]  # (N, 28, 28) uint8, ink = 255
    features, _ = strategy.extract_features(CharacterDataset(images, session.data.train_labels[rows]))  # (N, 1568)
    label_space = features.to(torch.float64) @ strategy.label_projection  # (N, |T|)
    return DecoderContext(
        images=torch.from_numpy(images),
        features=features,
        label_space=label_space,
        w_label=strategy.label_projection,  # (1568, |T|)
        w_latent=strategy.sae.w,  # (k, |T|)
        device=str(strategy.device),
        seed=session.seed,
        epochs=epochs,
    )


def fit_decoders(session, components, name: str, epochs: int) -> FigureDecoders:
    """Fit decoder ``name`` for latent codes and the ``linear`` decoder for features, once when they are the same."""
    context = decoder_context(session, epochs)
    latent = components.decoder.create(name)
    latent.fit(context)
    if name == FEATURE_DECODER:
        return FigureDecoders(latent=latent, features=latent)

    features = components.decoder.create(FEATURE_DECODER)
    if not hasattr(features, "decode_features"):
        raise ValueError(
            f"decoder {FEATURE_DECODER!r} has no decode_features method, which the feature reconstructions need: "
            f"unblock the built-in decoders or remove the plugin that replaces {FEATURE_DECODER!r}"
        )
    features.fit(context)
    return FigureDecoders(latent=latent, features=features)


@torch.no_grad()
def encode_images(strategy, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the (N, 1568) CNN features and (N, k) SAE codes of (N, 28, 28) uint8 images."""
    labels = np.zeros(len(images), dtype=np.int64)  # extract_features requires labels, but they are not used
    features, _ = strategy.extract_features(CharacterDataset(images, labels))
    return features, strategy.sae_codes(strategy.encode(features))


def decode_label_space(decoder, w_latent: torch.Tensor, label_space: torch.Tensor) -> torch.Tensor:
    """Decode (N, |T|) label-space vectors x with a latent decoder, through the latent z = x · pinv(W).

    When W (k, |T|) has full column rank, which needs k >= |T|, pinv(W) W = I and so z W = x. A
    decoder that first maps z to x = z W, as both built-in decoders do, then decodes x itself.
    """
    lift = torch.linalg.pinv(w_latent.to(torch.float64))  # (|T|, k)
    return decoder.decode(label_space.to(torch.float64) @ lift)  # (N, 28, 28)
