"""The SAE strategy: an Avalanche template that adapts to new classes from one labelled sample each."""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from zsl_cl._avalanche import EvaluationPlugin, SupervisedTemplate
from zsl_cl.config import SAEConfig
from zsl_cl.core.calibration import seen_offset
from zsl_cl.core.cnn import FEATURE_DIM, CharacterCNN
from zsl_cl.core.mappings import five_mappings, topk_accuracy
from zsl_cl.core.references import ReferenceSet, build_references, class_means
from zsl_cl.core.ridge import one_hot, solve_ridge
from zsl_cl.core.sae import SAEResult, solve_sae
from zsl_cl.core.novelty import calibrate_threshold, novelty_auroc, novelty_scores
from zsl_cl.data.classes import NUM_CLASSES
from zsl_cl.streams import draw_references
from zsl_cl.training.head import calibrate_head, head_predictions, imprint_rows
from zsl_cl.training.recipe import (
    HoldOutPlugin,
    build_backbone,
    build_optimizer,
    hold_out_fraction,
    random_affine,
    recipe_plugins,
)

# Assignment and update rounds of the transductive refinement; it settles within a few.
TRANSDUCTIVE_ROUNDS = 5

__all__ = ["SAEStrategy"]


def silent_evaluator():
    """Return an Avalanche EvaluationPlugin with no loggers, without its warning about that."""
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
        expand_head: bool = False,
        validation_fraction: float = 0.0,
    ):
        if config.transductive and expand_head:
            raise ValueError("--transductive refines references without labels, which the grown head cannot use: drop --expand-head or --transductive")
        torch.manual_seed(seed)  # the backbone's initial weights and the mini-batch order
        model = backbone if backbone is not None else build_backbone(config)
        optimizer = build_optimizer(model, config)
        validation_fraction = hold_out_fraction(config, validation_fraction)
        # Held-out base samples calibrate the seen-class offset and the novelty threshold.
        self.hold_out = HoldOutPlugin(validation_fraction, seed) if validation_fraction > 0 else None
        plugins = [*recipe_plugins(config, seed), *([self.hold_out] if self.hold_out else []), *plugins]
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=torch.nn.CrossEntropyLoss(),
            train_mb_size=config.batch_size,
            train_epochs=config.epochs,
            eval_mb_size=1024,
            device=device,
            plugins=list(plugins),
            evaluator=silent_evaluator(),
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
        # Growing the head also re-solves W_l and the SAE over every class seen so far.
        self.expand_head = expand_head
        self.validation_fraction = validation_fraction
        self.novelty_threshold: float | None = None
        # The latent code is the SAE code, widened by the centred unit CNN features when feature_weight > 0.
        self.latent_dim = config.k + (FEATURE_DIM if config.feature_weight > 0 else 0)
        self.feature_mean: torch.Tensor | None = None  # (1568,) mean base training feature
        self.seen_offset = 0.0  # subtracted from every base-class score
        self.discovered_latents = torch.empty(0, self.latent_dim, dtype=torch.float64)  # (G, D) open-world references
        self.hook = hook
        self.solver = components.solver.create(config.solver)
        self.distance = components.distance.create(config.distance)

        self.base_classes: list[int] = []
        self.label_projection: torch.Tensor | None = None  # W_l, (1568, |T|)
        self.sae: SAEResult | None = None
        self.code_norm = 1.0  # mean length of the base samples' SAE codes, to scale decoded codes
        self.base_latents: torch.Tensor | None = None  # (N_base, D)
        self.base_labels: torch.Tensor | None = None  # (N_base,)
        self.base_features: torch.Tensor | None = None  # (N_base, 1568), kept only to re-solve over Ω
        self.base_gram: torch.Tensor | None = None  # (1568, 1568) FᵀF of the base features
        self.head_calibration = None  # how the trained head scores base features, for imprinting
        self.shot_features = torch.empty(0, FEATURE_DIM)  # (n_shots, 1568)
        self.shot_latents = torch.empty(0, self.latent_dim, dtype=torch.float64)  # (n_shots, D)
        self.shot_labels = torch.empty(0, dtype=torch.long)
        self.pseudo_latents = torch.empty(0, self.latent_dim, dtype=torch.float64)  # (M, D) unlabelled samples, transductive only
        self.pseudo_labels = torch.empty(0, dtype=torch.long)  # (M,) the class each was assigned to
        self.references: ReferenceSet | None = None
        self.adapt_seconds: list[float] = []  # wall time of each experience's training or adaptation
        self.timings: dict[str, float] = {}
        self._test_features: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # ----------------------------------------------------------------- training

    def model_adaptation(self, model=None):
        # The head grows while the backbone trains on the base classes, and
        # later only when asked to, so it never contains a row that was not set.
        if self.sae is not None and not self.expand_head:
            return self.model
        return super().model_adaptation(model)

    @property
    def validation_dataset(self):
        """The base training samples held out of training, or None."""
        return self.hold_out.validation if self.hold_out is not None else None

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
        features, labels = self.extract_features(self.adapted_dataset)  # (N, 1568), (N,)
        self.base_labels = labels
        self.feature_mean = features.mean(dim=0)
        if self.expand_head:
            self.base_features = features
            self.base_gram = features.to(torch.float64).T @ features.to(torch.float64)
            self.head_calibration = calibrate_head(self.model.head, features.to(self.device), labels, self.base_classes)

        self._solve(features, labels, self.base_classes)
        self.base_latents = self.encode(features)  # (N, k)
        self.distance.fit(self.base_latents, self.base_labels)

        self.hook.after_backbone_trained(strategy=self, model=self.model)
        if self.validation_dataset is not None:
            self._calibrate_on_validation()
        self._rebuild_references()

    def _calibrate_on_validation(self) -> None:
        # Held-out base samples were never trained on, so they behave like test samples.
        features, labels = self.extract_features(self.validation_dataset)  # (V, 1568)
        latents = self.encode(features)  # (V, D)
        means = build_references(self.base_latents, self.base_labels, self.base_classes, latents[:0], labels[:0], [])
        # Transductive references are class means too, so they need no offset against the base means.
        if self.config.calibration == "validation" and not self.config.transductive:
            views, _ = self.extract_features(self.validation_dataset, views=self.config.reference_views, key=(self.seed, 0))
            self.seen_offset = seen_offset(latents, self.encode(views), labels, means, self.distance)
        self.novelty_threshold = calibrate_threshold(novelty_scores(latents, means.vectors))

    def _solve(self, features: torch.Tensor, labels: torch.Tensor, classes: list[int], gram: torch.Tensor | None = None) -> None:
        # W_l maps features to the one-hot labels of ``classes``; X = F W_l lives in label space.
        targets = one_hot(labels, classes)  # (N, C)
        f = features.to(torch.float64)
        gram = f.T @ f if gram is None else gram  # (1568, 1568)
        self.label_projection = solve_ridge(gram, f.T @ targets, self.config.ridge)  # (1568, C)
        x = f @ self.label_projection  # (N, C)

        # The SAE is solved on local class indices 0..C-1 with its own seeded codes.
        generator = torch.Generator().manual_seed(self.seed)
        self.sae = solve_sae(
            x, targets.argmax(dim=1), k=self.config.k, lam=self.config.lam,
            refinements=self.config.refinements, solver=self.solver, generator=generator,
        )
        self.code_norm = float(self.sae.encode(x).norm(dim=1).mean())

    def _adapt_one_shot(self, experience) -> None:
        # Only the drawn samples of this experience are read, which is the one-shot contract.
        new_classes = sorted(experience.classes_in_this_experience)
        index = experience.current_experience
        shots = None if self.full_budget else self.config.shots
        picked = draw_references(experience.dataset.targets, new_classes, shots, self.seed, index, self.reference_draw)
        views = 0 if self.full_budget else self.config.reference_views
        features, labels = self.extract_features(Subset(experience.dataset, picked), views=views, key=(self.seed, index, self.reference_draw))
        self.shot_features = torch.cat([self.shot_features, features])
        self.shot_labels = torch.cat([self.shot_labels, labels])

        if self.expand_head:
            self._resolve_over_omega()
            grown = imprint_rows(self.model.head, features.to(self.device), labels, self.head_calibration)
            self.hook.after_head_expanded(strategy=self, head=self.model.head, new_classes=grown)
        self.shot_latents = self.encode(self.shot_features)  # (n_shots, D)
        if self.config.transductive and not self.full_budget:
            self._refine_with_unlabelled(experience, new_classes)
        self._rebuild_references()

    def _refine_with_unlabelled(self, experience, new_classes: list[int]) -> None:
        # The experience's training samples are read without their labels;
        # each is assigned to the closest of this experience's new references.
        features, _ = self.extract_features(experience.dataset)  # (M, 1568), labels discarded
        pool = self.encode(features)  # (M, D)
        mine = torch.isin(self.shot_labels, torch.tensor(new_classes))
        shots, labels = self.shot_latents[mine], self.shot_labels[mine]  # (n, D), (n,)
        references = class_means(shots, labels, new_classes)  # (c, D)

        # k-means seeded by the labelled references, which stay in their class's mean.
        for _ in range(TRANSDUCTIVE_ROUNDS):
            assigned = self.distance.scores(pool, references).argmax(dim=1)  # (M,) rows of new_classes
            references = torch.stack([
                torch.cat([shots[labels == c], pool[assigned == row]]).mean(dim=0) for row, c in enumerate(new_classes)
            ])
        self.pseudo_latents = torch.cat([self.pseudo_latents, pool])
        self.pseudo_labels = torch.cat([self.pseudo_labels, torch.tensor(new_classes)[assigned]])

    def _resolve_over_omega(self) -> None:
        # Each reference is its class's only labelled sample; FᵀF grows by the
        # references' outer products instead of being recomputed from all samples.
        shots = self.shot_features.to(torch.float64)  # (n_shots, 1568)
        features = torch.cat([self.base_features, self.shot_features])
        labels = torch.cat([self.base_labels, self.shot_labels])
        omega = self.base_classes + sorted(set(self.shot_labels.tolist()))
        self._solve(features, labels, omega, gram=self.base_gram + shots.T @ shots)
        self.base_latents = self.encode(self.base_features)
        self.distance.fit(self.base_latents, self.base_labels)

    def reset_references(self) -> None:
        """Forget every new-class reference, so that the later experiences can be adapted to again."""
        if self.expand_head:
            raise ValueError("references cannot be reset after the head has grown: run without --expand-head")
        self.shot_features = self.shot_features[:0]
        self.shot_latents = self.shot_latents[:0]
        self.shot_labels = self.shot_labels[:0]
        self.pseudo_latents = self.pseudo_latents[:0]
        self.pseudo_labels = self.pseudo_labels[:0]
        self._rebuild_references()

    def add_discovered(self, latents: torch.Tensor) -> list[int]:
        """Add (G, k) references of classes found without labels; return their new class ids.

        Discovered classes get ids from NUM_CLASSES upwards, so they never
        collide with a true class id.
        """
        first = NUM_CLASSES + len(self.discovered_latents)
        self.discovered_latents = torch.cat([self.discovered_latents, latents.to(torch.float64)])
        self._rebuild_references()
        return list(range(first, first + len(latents)))

    def _rebuild_references(self) -> None:
        shot_classes = sorted(set(self.shot_labels.tolist()))
        # Transductive runs average each class's labelled references with the unlabelled samples assigned to it.
        latents = torch.cat([self.shot_latents, self.pseudo_latents])  # (n_shots + M, D)
        labels = torch.cat([self.shot_labels, self.pseudo_labels])
        self.references = build_references(
            self.base_latents, self.base_labels, self.base_classes, latents, labels, shot_classes, seen_offset=self.seen_offset,
        )
        if len(self.discovered_latents):
            ids = list(range(NUM_CLASSES, NUM_CLASSES + len(self.discovered_latents)))
            offsets = self.references.offsets
            self.references = ReferenceSet(
                self.references.classes + ids,
                torch.cat([self.references.vectors, self.discovered_latents]),
                self.references.sources + ["discovered"] * len(ids),
                None if offsets is None else torch.cat([offsets, offsets.new_zeros(len(ids))]),
            )
        self.hook.after_references_rebuilt(strategy=self, references=self.references)

    # ----------------------------------------------------------------- encoding

    @torch.no_grad()
    def extract_features(self, dataset, views: int = 0, key=(0,)) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the (N, 1568) CNN features and (N,) labels of a dataset, in inference mode.

        With ``views`` > 0, each sample's features are the mean over the sample
        and ``views`` random affine distortions of it, drawn from a generator
        seeded with ``key``: still one labelled sample, seen several ways.
        """
        was_training = self.model.training
        self.model.eval()
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence(list(key)).generate_state(1)[0]))
        features, labels = [], []
        for batch in DataLoader(dataset, batch_size=1024, shuffle=False):
            x, y = batch[0].to(self.device), batch[1]
            total = self.model.features(x)  # (B, 1568)
            for _ in range(views):
                total = total + self.model.features(random_affine(x, generator))
            features.append((total / (views + 1)).cpu())
            labels.append(torch.as_tensor(y))
        self.model.train(was_training)
        return torch.cat(features), torch.cat(labels).long()

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """Map (N, 1568) features to (N, D) latent codes through W_l and the SAE encoder.

        With ``feature_weight`` w > 0, the code is widened to
        [√(1−w)·unit(SAE code), √w·unit(features − base mean)], so that the
        cosine between two codes is (1−w)·cos(SAE codes) + w·cos(centred features).
        The SAE code alone keeps only what W_l projects onto the base labels.
        """
        codes = self.sae.encode(features.to(torch.float64) @ self.label_projection)  # (N, k)
        weight = self.config.feature_weight
        if weight == 0:
            return codes
        centred = features.to(torch.float64) - self.feature_mean.to(torch.float64)  # (N, 1568)
        return torch.cat([(1 - weight) ** 0.5 * F.normalize(codes, dim=1), weight**0.5 * F.normalize(centred, dim=1)], dim=1)

    def sae_codes(self, latents: torch.Tensor) -> torch.Tensor:
        """Return the (N, k) SAE-code part of (N, D) latent codes, which is what decoders read.

        A widened code keeps only the direction of its SAE part, so that part is
        scaled to the mean length of the base samples' SAE codes.
        """
        if self.config.feature_weight == 0:
            return latents
        return F.normalize(latents[:, : self.config.k], dim=1) * self.code_norm

    # --------------------------------------------------------------- evaluation

    def test_features(self, test_experiences) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the (N, 1568) features and (N,) labels of the given test experiences.

        Features are cached per experience because the backbone is frozen after experience 0.
        """
        features, labels = [], []
        for experience in test_experiences:
            key = experience.current_experience
            if key not in self._test_features:
                self._test_features[key] = self.extract_features(experience.dataset)
                if not bool(torch.isfinite(self._test_features[key][0]).all()):
                    raise ValueError(
                        f"the CNN features of the test data of experience {key} contain NaN or Inf, so the backbone "
                        "has diverged or was altered: rerun with another --seed or fewer --epochs, and check any --plugin that changes the model"
                    )
            features.append(self._test_features[key][0])
            labels.append(self._test_features[key][1])
        return torch.cat(features), torch.cat(labels)

    def test_latents(self, test_experiences) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the test data of the given experiences into (N, k) latents, with their (N,) labels."""
        features, labels = self.test_features(test_experiences)
        return self.encode(features), labels

    def evaluate_seen(self, test_experiences) -> dict:
        """Top-1 and top-3 accuracy (%) of the seen classes' test data against all current references.

        With head expansion, ``head_top1`` and ``head_top3`` score the grown
        output layer's softmax on the same samples.
        """
        latents, labels = self.test_latents(test_experiences)
        result = topk_accuracy(latents, labels, self.references, self.distance)
        if self.expand_head:
            features, _ = self.test_features(test_experiences)
            ranked = head_predictions(self.model.head, features.to(self.device)).cpu()  # (N, 3) global ids
            hits = ranked == labels.unsqueeze(1)
            result["head_top1"] = 100.0 * float(hits[:, :1].any(dim=1).float().mean())
            result["head_top3"] = 100.0 * float(hits.any(dim=1).float().mean())
        return result

    def novelty_auroc(self, seen_experiences, future_experiences) -> float | None:
        """AUROC (%) of the novelty score separating future classes' test data from seen classes'; None at the end."""
        if len(future_experiences) == 0:
            return None
        known, _ = self.test_latents(seen_experiences)
        novel, _ = self.test_latents(future_experiences)
        references = self.references.vectors
        return novelty_auroc(novelty_scores(known, references), novelty_scores(novel, references))

    def final_mappings(self, test_experiences) -> dict:
        """Evaluate the five mappings, with T the base classes and U every class added later."""
        latents, labels = self.test_latents(test_experiences)
        unseen = [c for c in self.references.classes if c not in self.base_classes]
        return five_mappings(latents, labels, self.references, self.base_classes, unseen, self.distance)
