"""The SAE strategy: an Avalanche template that adapts to new classes from one labelled sample each."""

from __future__ import annotations

import time
import warnings

import torch
from torch.utils.data import DataLoader, Subset

from zsl_cl._avalanche import EvaluationPlugin, IncrementalClassifier, SupervisedTemplate
from zsl_cl.config import SAEConfig
from zsl_cl.core.cnn import FEATURE_DIM, CharacterCNN
from zsl_cl.core.mappings import five_mappings, topk_accuracy
from zsl_cl.core.references import ReferenceSet, build_references
from zsl_cl.core.ridge import fit_label_projection, one_hot
from zsl_cl.core.sae import SAEResult, solve_sae
from zsl_cl.streams import draw_references

__all__ = ["SAEStrategy"]


def _silent_evaluator():
    # Metrics are computed by the strategy over whole test sets, because the
    # z-scored cosine distance needs every evaluated sample at once. Avalanche
    # warns when an evaluator has no loggers, which is intended here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(loggers=[])


class SAEStrategy(SupervisedTemplate):
    """Train the CNN on experience 0, then adapt to each later experience without gradient steps.

    Experience 0 runs Avalanche's SGD loop on the base classes, then fits the
    ridge projection W_l and solves the SAE. Each later experience draws
    ``config.shots`` labelled samples per new class, encodes them, and rebuilds
    the references of every class seen so far. No other training data of
    that experience is read.
    """

    def __init__(
        self,
        *,
        config: SAEConfig,
        components,
        hook,
        seed: int = 0,
        device: str = "cpu",
        plugins=(),
        backbone: CharacterCNN | None = None,
        full_budget: bool = False,
    ):
        torch.manual_seed(seed)  # the backbone's initial weights and the mini-batch order
        model = backbone if backbone is not None else CharacterCNN(IncrementalClassifier(FEATURE_DIM, initial_out_features=2))
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=torch.nn.CrossEntropyLoss(),
            train_mb_size=config.batch_size,
            train_epochs=config.epochs,
            eval_mb_size=1024,
            device=device,
            plugins=list(plugins),
            evaluator=_silent_evaluator(),
            eval_every=-1,
        )
        self.config = config
        self.seed = seed
        # A backbone passed in is already trained on the base classes, so
        # experience 0 skips the SGD loop and only fits W_l and the SAE.
        self.pretrained = backbone is not None
        # The full budget replaces each one-shot reference with the mean of
        # all of the class's training samples; it is for comparisons only.
        self.full_budget = full_budget
        self.reference_draw = 0  # which independent draw of the references to take
        self.hook = hook
        self.solver = components.solver.create(config.solver)
        self.distance = components.distance.create(config.distance)

        self.base_classes: list[int] = []
        self.label_projection: torch.Tensor | None = None  # W_l, (1568, |T|)
        self.sae: SAEResult | None = None
        self.base_latents: torch.Tensor | None = None  # (N_base, k)
        self.base_labels: torch.Tensor | None = None  # (N_base,)
        self.shot_latents = torch.empty(0, config.k, dtype=torch.float64)  # (n_shots, k)
        self.shot_labels = torch.empty(0, dtype=torch.long)
        self.references: ReferenceSet | None = None
        self.adapt_seconds: list[float] = []  # wall time of each experience's training or adaptation
        self.timings: dict[str, float] = {}
        self._test_features: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # ----------------------------------------------------------------- training

    def model_adaptation(self, model=None):
        # The head only grows while the backbone trains on the base classes.
        # Later experiences leave it alone, so the SAE never sees an untrained row.
        if self.sae is not None:
            return self.model
        return super().model_adaptation(model)

    def _train_exp(self, experience, eval_streams=None, **kwargs):
        start = time.perf_counter()
        if self.sae is None:
            if not self.pretrained:
                super()._train_exp(experience, eval_streams, **kwargs)
            self.timings["backbone_seconds"] = time.perf_counter() - start
            self._fit_base(experience)
            self.timings["sae_fit_seconds"] = time.perf_counter() - start - self.timings["backbone_seconds"]
        else:
            self._adapt_one_shot(experience)
        self.adapt_seconds.append(time.perf_counter() - start)

    def _fit_base(self, experience) -> None:
        # Features of every base training sample, with BatchNorm in inference mode.
        self.base_classes = sorted(experience.classes_in_this_experience)
        features, labels = self.extract_features(experience.dataset)  # (N, 1568), (N,)

        # W_l maps features to the one-hot labels of T; X = F W_l lives in label space.
        targets = one_hot(labels, self.base_classes)  # (N, |T|)
        self.label_projection = fit_label_projection(features, targets, self.config.ridge)
        x = features.to(torch.float64) @ self.label_projection  # (N, |T|)

        # The SAE is solved on local class indices 0..|T|-1 with its own seeded codes.
        local = targets.argmax(dim=1)
        generator = torch.Generator().manual_seed(self.seed)
        self.sae = solve_sae(x, local, k=self.config.k, lam=self.config.lam, refinements=self.config.refinements, solver=self.solver, generator=generator)
        self.base_latents = self.sae.encode(x)  # (N, k)
        self.base_labels = labels
        self.distance.fit(self.base_latents, self.base_labels)

        self.hook.after_backbone_trained(strategy=self, model=self.model)
        self._rebuild_references()

    def _adapt_one_shot(self, experience) -> None:
        # Only the drawn samples of this experience are read, which is the one-shot contract.
        new_classes = sorted(experience.classes_in_this_experience)
        index = experience.current_experience
        shots = None if self.full_budget else self.config.shots
        picked = draw_references(experience.dataset.targets, new_classes, shots, self.seed, index, self.reference_draw)
        features, labels = self.extract_features(Subset(experience.dataset, picked))  # (n, 1568)

        latents = self.encode(features)  # (n, k)
        self.shot_latents = torch.cat([self.shot_latents, latents])
        self.shot_labels = torch.cat([self.shot_labels, labels])
        self._rebuild_references()

    def reset_references(self) -> None:
        """Forget every new-class reference, so that the later experiences can be adapted to again."""
        self.shot_latents = self.shot_latents[:0]
        self.shot_labels = self.shot_labels[:0]
        self._rebuild_references()

    def _rebuild_references(self) -> None:
        shot_classes = sorted(set(self.shot_labels.tolist()))
        self.references = build_references(
            self.base_latents, self.base_labels, self.base_classes, self.shot_latents, self.shot_labels, shot_classes
        )
        self.hook.after_references_rebuilt(strategy=self, references=self.references)

    # ----------------------------------------------------------------- encoding

    @torch.no_grad()
    def extract_features(self, dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the (N, 1568) CNN features and (N,) labels of a dataset, in inference mode."""
        was_training = self.model.training
        self.model.eval()
        features, labels = [], []
        for batch in DataLoader(dataset, batch_size=1024, shuffle=False):
            x, y = batch[0], batch[1]
            features.append(self.model.features(x.to(self.device)).cpu())
            labels.append(torch.as_tensor(y))
        self.model.train(was_training)
        return torch.cat(features), torch.cat(labels).long()

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Map (N, 1568) features to (N, k) latent codes through W_l and the SAE encoder."""
        return self.sae.encode(features.to(torch.float64) @ self.label_projection)

    # --------------------------------------------------------------- evaluation

    def test_latents(self, test_experiences) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the test data of the given experiences; features are cached per experience."""
        latents, labels = [], []
        for experience in test_experiences:
            key = experience.current_experience
            if key not in self._test_features:
                self._test_features[key] = self.extract_features(experience.dataset)
            features, y = self._test_features[key]
            latents.append(self.encode(features))
            labels.append(y)
        return torch.cat(latents), torch.cat(labels)

    def evaluate_seen(self, test_experiences) -> dict:
        """Top-1 and top-3 accuracy (%) of the seen classes' test data against all current references."""
        latents, labels = self.test_latents(test_experiences)
        return topk_accuracy(latents, labels, self.references, self.distance)

    def final_mappings(self, test_experiences) -> dict:
        """The five mappings, with T the base classes and U every class added later."""
        latents, labels = self.test_latents(test_experiences)
        unseen = [c for c in self.references.classes if c not in self.base_classes]
        return five_mappings(latents, labels, self.references, self.base_classes, unseen, self.distance)
