"""A nearest-class-mean baseline on the frozen CNN features, centred and L2-normalised (SimpleShot's CL2N)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from zsl_cl._avalanche import SupervisedTemplate
from zsl_cl.core.cnn import FEATURE_DIM

__all__ = ["CentredNCM", "NCMStrategy"]


class CentredNCM(nn.Module):
    """CNN features minus the base-class mean, L2-normalised, scored by Avalanche's NCMClassifier."""

    def __init__(self, features: nn.Module) -> None:
        from zsl_cl.compare._avalanche import NCMClassifier

        super().__init__()
        self.features = features
        self.register_buffer("centre", torch.zeros(FEATURE_DIM))
        self.classifier = NCMClassifier(normalize=True)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Map (B, 1, 28, 28) images to (B, 1568) unit vectors."""
        return F.normalize(self.features(x) - self.centre, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # NCMClassifier returns minus the Euclidean distance to each class mean: (B, C).
        return self.classifier(self.embed(x))


class NCMStrategy(SupervisedTemplate):
    """Fit one mean per class from the data of each experience; the backbone never changes.

    Experience 0 sets the centre to the mean feature of the base training
    data. Each class mean is the mean of its samples' centred, normalised
    features, so under the one-shot budget a new class's mean is its single
    sample.
    """

    def __init__(self, *, features: nn.Module, train_mb_size: int, device: str, plugins, evaluator) -> None:
        super().__init__(
            model=CentredNCM(features),
            optimizer=None,  # no gradient steps
            criterion=nn.CrossEntropyLoss(),
            train_mb_size=train_mb_size,
            train_epochs=1,  # one pass collects every sample's features
            eval_mb_size=1024,
            device=device,
            plugins=plugins,
            evaluator=evaluator,
            eval_every=-1,
        )
        self.centred = False
        self.class_means: dict[int, torch.Tensor] = {}

    def make_optimizer(self, **kwargs):
        pass  # nothing is trained by gradient

    def training_epoch(self, **kwargs):
        # One pass over the experience in inference mode, so BatchNorm uses its running statistics.
        self.model.eval()
        features, labels = [], []
        for self.mbatch in self.dataloader:
            self._unpack_minibatch()
            self._before_training_iteration(**kwargs)
            self._before_forward(**kwargs)
            with torch.no_grad():
                features.append(self.model.features(self.mb_x))  # (B, 1568)
            labels.append(self.mb_y)
            self._after_training_iteration(**kwargs)
        self._update_means(torch.cat(features), torch.cat(labels))

    def _update_means(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        # The centre is fixed by the base classes and never moves afterwards.
        if not self.centred:
            self.model.centre.copy_(features.mean(dim=0))
            self.centred = True
        embedded = F.normalize(features - self.model.centre, dim=1)  # (N, 1568)
        for c in labels.unique().tolist():
            self.class_means[c] = embedded[labels == c].mean(dim=0)
        self.model.classifier.replace_class_means_dict(self.class_means)
