"""The backbone recipe: cosine head, random distortions, one-cycle schedule and held-out base data."""

from __future__ import annotations

import torch

from zsl_cl._avalanche import SupervisedTemplate, class_incremental_benchmark
from zsl_cl.config import get_preset
from zsl_cl.streams import CharacterDataset
from zsl_cl.training.recipe import (
    AugmentPlugin,
    CosineIncrementalClassifier,
    HoldOutPlugin,
    OneCyclePlugin,
    build_backbone,
    build_optimizer,
    random_affine,
)
from zsl_cl.training.strategy import silent_evaluator


def strokes(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, 28, 28) binary images, each a random thick bar."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        row, col = torch.randint(6, 18, (2,), generator=generator).tolist()
        images[i, 0, row : row + 8, col : col + 3] = 1
    return images


def test_random_affine_is_binary_seeded_and_changes_images() -> None:
    images = strokes(16)
    first = random_affine(images, torch.Generator().manual_seed(1))
    again = random_affine(images, torch.Generator().manual_seed(1))
    other = random_affine(images, torch.Generator().manual_seed(2))
    assert first.shape == images.shape
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.equal(first, images)
    # Mild distortions keep most of the ink.
    assert (first.sum() / images.sum()).item() > 0.7


def test_cosine_head_bounded_and_masked() -> None:
    head = CosineIncrementalClassifier(1568, scale=16.0, initial_out_features=4)
    head.active_units[:] = torch.tensor([1, 1, 0, 0], dtype=head.active_units.dtype)
    logits = head(torch.rand(5, 1568))  # (5, 4)
    assert logits[:, :2].abs().max() <= 16.0 + 1e-4
    assert torch.all(logits[:, 2:] == head.mask_value)
    # Scaling a feature vector leaves its cosine logits unchanged.
    x = torch.rand(3, 1568)
    assert torch.allclose(head(x)[:, :2], head(7 * x)[:, :2], atol=1e-5)


def tiny_stream(n_per_class: int = 40):
    images = (strokes(2 * n_per_class) * 255).squeeze(1).to(torch.uint8).numpy()
    labels = [0] * n_per_class + [1] * n_per_class
    dataset = CharacterDataset(images, labels)
    return class_incremental_benchmark({"train": dataset, "test": dataset}, class_order=[0, 1], num_classes_per_exp=[2])


def train_tiny(plugins, epochs: int = 2):
    config = get_preset("default", epochs=epochs, batch_size=16)
    torch.manual_seed(0)
    model = build_backbone(config)
    seen = []
    model.features.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    template = SupervisedTemplate(
        model=model, optimizer=build_optimizer(model, config), criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=16, train_epochs=epochs, device="cpu", plugins=plugins, evaluator=silent_evaluator(), eval_every=-1,
    )
    stream = tiny_stream()
    template.train(stream.train_stream[0])
    return template, seen, stream


def test_one_cycle_anneals_to_almost_zero() -> None:
    template, _, _ = train_tiny([OneCyclePlugin(0.05)])
    lr = template.optimizer.param_groups[0]["lr"]
    assert lr < 0.05 / 1000


def test_augment_plugin_feeds_distorted_images() -> None:
    _, seen, stream = train_tiny([AugmentPlugin(seed=0)], epochs=1)
    originals = {tuple(image.flatten().tolist()) for image, _, *rest in stream.train_stream[0].dataset}
    fed = [tuple(image.flatten().tolist()) for batch in seen for image in batch]
    assert sum(image in originals for image in fed) < len(fed) / 2


def test_hold_out_tenth_per_class() -> None:
    hold_out = HoldOutPlugin(0.1, seed=0)
    _, seen, _ = train_tiny([hold_out], epochs=1)
    assert sorted(hold_out.validation.targets) == [0] * 4 + [1] * 4
    assert sum(len(batch) for batch in seen) == 72
