"""Built-in decoders from SAE latent codes back to 28x28 images, for figures only.

Both decoders first map a latent code z (k,) to the label space through the SAE
decoder Wᵀ, x = Wᵀ z (|T|,), and then to an image with a small transposed CNN
trained on the base classes:

- ``tconv`` decodes the label space directly: x -> Linear -> 32x7x7 -> 14x14 -> 28x28.
- ``linear`` maps x back to CNN features with the pseudo-inverse of the ridge
  projection, f = x · pinv(W_l) (1568,), and decodes f, read as 32x7x7, with a
  "feature decoder" trained to reconstruct images from their CNN features.

Neither decoder takes part in classification.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zsl_cl.hookspecs import hookimpl
from zsl_cl.protocols import DecoderContext

__all__ = ["LabelSpaceDecoder", "FeatureDecoder", "register_decoders"]

IMAGE_SIZE = 28
FEATURE_SHAPE = (32, 7, 7)  # layout of the 1568 CNN features, as nn.Flatten wrote them


def _upsampler() -> nn.Sequential:
    """Return the transposed-CNN stage shared by both decoders: (B, 32, 7, 7) -> (B, 1, 28, 28) logits."""
    return nn.Sequential(
        # Mixing neighbouring 7x7 positions before upsampling lowers the BCE reached in a few epochs.
        nn.Conv2d(32, 32, kernel_size=3, padding=1),  # (B, 32, 7, 7)
        nn.ReLU(),
        nn.ConvTranspose2d(32, 16, kernel_size=4, stride=2, padding=1),  # (B, 16, 14, 14)
        nn.ReLU(),
        nn.ConvTranspose2d(16, 1, kernel_size=4, stride=2, padding=1),  # (B, 1, 28, 28)
    )


def _label_space_network(label_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(label_dim, math.prod(FEATURE_SHAPE)),  # (B, 1568)
        nn.ReLU(),
        nn.Unflatten(1, FEATURE_SHAPE),  # (B, 32, 7, 7)
        _upsampler(),
    )


def _feature_network() -> nn.Sequential:
    return nn.Sequential(nn.Unflatten(1, FEATURE_SHAPE), _upsampler())  # (B, 1568) -> (B, 1, 28, 28)


def _check_context(context: DecoderContext) -> None:
    """Raise ValueError unless the context's arrays have consistent shapes and at least one epoch is requested."""
    n = context.images.shape[0]
    label_dim = context.w_label.shape[-1]
    expected = {
        "images": (n, IMAGE_SIZE, IMAGE_SIZE),
        "features": (n, math.prod(FEATURE_SHAPE)),
        "label_space": (n, label_dim),
        "w_label": (math.prod(FEATURE_SHAPE), label_dim),
        "w_latent": (context.w_latent.shape[0], label_dim),
    }
    for name, shape in expected.items():
        actual = tuple(getattr(context, name).shape)
        if actual != shape:
            raise ValueError(f"invalid decoder context: {name} has shape {actual}, expected {shape} to match the other fields")
    if n == 0:
        raise ValueError("invalid decoder context: it contains no images; pass the base-class training set")
    if context.images.dtype != torch.uint8:
        raise ValueError(f"invalid decoder context: images have dtype {context.images.dtype}, expected torch.uint8 with ink = 255")
    if context.epochs < 1:
        raise ValueError(f"invalid decoder epochs {context.epochs}: use 1 or more")


def _train(network: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, context: DecoderContext,
           learning_rate: float, batch_size: int) -> list[float]:
    """Train network to map inputs (N, D) to binary targets (N, 1, 28, 28) with BCE, and return the mean loss of each epoch."""
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    # BCE on logits is the numerically stable form of sigmoid followed by BCE.
    loss_function = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(context.seed)
    epoch_losses: list[float] = []
    network.train()
    for _ in range(context.epochs):
        # A fresh shuffle per epoch, drawn from the seeded generator so fits are repeatable.
        order = torch.randperm(len(inputs), generator=generator).to(inputs.device)  # (N,)
        total = 0.0

        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]  # (B,)
            logits = network(inputs[batch])  # (B, 1, 28, 28)
            loss = loss_function(logits, targets[batch])

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)

        epoch_losses.append(total / len(order))
    network.eval()
    return epoch_losses


class _TrainedDecoder:
    """Fit and decode steps shared by both decoders.

    Subclasses choose the network, its training inputs, and the map from label-space
    vectors x (N, |T|) to those inputs.
    """

    name = ""

    def __init__(self, learning_rate: float = 3e-3, batch_size: int = 128) -> None:
        if learning_rate <= 0:
            raise ValueError(f"invalid learning rate {learning_rate}: use a value > 0, such as 3e-3")
        if batch_size < 1:
            raise ValueError(f"invalid batch size {batch_size}: use 1 or more, such as 128")
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epoch_losses: list[float] = []  # mean training BCE of each epoch, filled by fit
        self._network: nn.Module | None = None
        self._w_latent: torch.Tensor | None = None  # (k, |T|) float32 on the CPU
        self._input_scale = 1.0
        self._device = torch.device("cpu")

    def fit(self, context: DecoderContext) -> None:
        """Train the transposed CNN on the base-class images of context for context.epochs epochs."""
        _check_context(context)
        self._device = torch.device(context.device)
        inputs = self._training_inputs(context).detach().to(self._device, torch.float32)  # (N, D)
        targets = (context.images.to(self._device) > 127).to(torch.float32).unsqueeze(1)  # (N, 1, 28, 28), ink = 1

        # One scalar keeps network inputs near unit size whatever the CNN's feature scale. A scalar,
        # unlike per-dimension standardisation, commutes with the linear maps that produce decode inputs.
        self._input_scale = float(inputs.square().mean().sqrt().clamp_min(1e-12))

        # fork_rng seeds the weight initialisation without changing the caller's global RNG state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(context.seed)
            network = self._build_network(context).to(self._device)
        self.epoch_losses = _train(network, inputs / self._input_scale, targets, context, self.learning_rate, self.batch_size)
        self._network = network
        self._w_latent = context.w_latent.detach().to("cpu", torch.float32)
        self._store_projections(context)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode latent codes (N, k) to (N, 28, 28) float32 images in [0, 1] on the CPU."""
        w_latent = self._require_fitted()
        self._check_width(latents, w_latent.shape[0], "latents")
        label_space = latents.detach().to("cpu", torch.float32) @ w_latent  # (N, |T|): x = Wᵀ z for each row z
        return self._run_network(self._label_space_to_inputs(label_space))

    def _run_network(self, inputs: torch.Tensor) -> torch.Tensor:
        """Decode network inputs (N, D), in the units of the training inputs, to (N, 28, 28) images on the CPU."""
        assert self._network is not None
        scaled = inputs.detach().to(self._device, torch.float32) / self._input_scale
        with torch.no_grad():
            logits = self._network(scaled)  # (N, 1, 28, 28)
        return torch.sigmoid(logits).squeeze(1).cpu()

    def _require_fitted(self) -> torch.Tensor:
        """Return W (k, |T|), or raise RuntimeError when fit has not run."""
        if self._network is None or self._w_latent is None:
            raise RuntimeError(f"decoder {self.name!r} is not fitted: call fit(context) before decoding")
        return self._w_latent

    def _check_width(self, inputs: torch.Tensor, width: int, input_name: str) -> None:
        if inputs.ndim != 2 or inputs.shape[1] != width:
            raise ValueError(f"invalid {input_name} of shape {tuple(inputs.shape)} for decoder {self.name!r}: expected (N, {width})")

    def _training_inputs(self, context: DecoderContext) -> torch.Tensor:
        raise NotImplementedError

    def _build_network(self, context: DecoderContext) -> nn.Module:
        raise NotImplementedError

    def _store_projections(self, context: DecoderContext) -> None:
        """Store any fixed projection that _label_space_to_inputs needs. The default stores nothing."""

    def _label_space_to_inputs(self, label_space: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LabelSpaceDecoder(_TrainedDecoder):
    """``tconv``: z -> x = Wᵀ z -> transposed CNN trained on the base classes' label-space vectors X = F W_l."""

    name = "tconv"

    def decode_label_space(self, label_space: torch.Tensor) -> torch.Tensor:
        """Decode label-space vectors (N, |T|) to (N, 28, 28) float32 images in [0, 1] on the CPU."""
        w_latent = self._require_fitted()
        self._check_width(label_space, w_latent.shape[1], "label-space vectors")
        return self._run_network(label_space)

    def _training_inputs(self, context: DecoderContext) -> torch.Tensor:
        return context.label_space  # (N, |T|)

    def _build_network(self, context: DecoderContext) -> nn.Module:
        return _label_space_network(context.label_space.shape[1])

    def _label_space_to_inputs(self, label_space: torch.Tensor) -> torch.Tensor:
        return label_space


class FeatureDecoder(_TrainedDecoder):
    """``linear``: z -> x = Wᵀ z -> f = x · pinv(W_l) -> transposed CNN trained on the base classes' CNN features.

    f = x · pinv(W_l) is the minimum-norm feature vector with f W_l = x. It has no
    component along the 1568 − |T| feature directions that W_l maps to zero, so
    decoded latents show only what the label space keeps and look less like real
    characters than ``decode_features`` applied to an image's own features.
    """

    name = "linear"

    def __init__(self, learning_rate: float = 3e-3, batch_size: int = 128) -> None:
        super().__init__(learning_rate, batch_size)
        self._label_to_features: torch.Tensor | None = None  # (|T|, 1568) pinv(W_l)

    def decode_features(self, features: torch.Tensor) -> torch.Tensor:
        """Decode CNN features (N, 1568) to (N, 28, 28) float32 images in [0, 1] on the CPU."""
        self._require_fitted()
        self._check_width(features, math.prod(FEATURE_SHAPE), "features")
        return self._run_network(features)

    def _training_inputs(self, context: DecoderContext) -> torch.Tensor:
        return context.features  # (N, 1568)

    def _build_network(self, context: DecoderContext) -> nn.Module:
        return _feature_network()

    def _store_projections(self, context: DecoderContext) -> None:
        # W_l is (1568, |T|), so pinv(W_l) is (|T|, 1568) and maps row vectors x to features f = x · pinv(W_l).
        w_label = context.w_label.detach().to("cpu", torch.float64)
        self._label_to_features = torch.linalg.pinv(w_label).to(torch.float32)

    def _label_space_to_inputs(self, label_space: torch.Tensor) -> torch.Tensor:
        assert self._label_to_features is not None
        return label_space @ self._label_to_features  # (N, |T|) @ (|T|, 1568) -> (N, 1568)


@hookimpl
def register_decoders(register):
    register("tconv", LabelSpaceDecoder, "Transposed CNN from the label space x = Wᵀ z to the image, trained on the base classes")
    register("linear", FeatureDecoder, "Wᵀ, then pinv(W_l) to CNN features, then a transposed-CNN feature decoder trained on the base classes")
