"""The compared strategies: names, hyper-parameters, and how each one is built from the shared backbone.

Every strategy starts from a private copy of the backbone trained once per
seed on experience 0. The Avalanche baselines then process experience 0 with
zero training epochs, which runs their own before- and after-experience
callbacks: Replay, GDumb and iCaRL fill their buffers, EWC computes its
importances, LwF stores the previous model and Cumulative stores the data.
SI receives the parameter trajectory recorded while the backbone trained,
StreamingLDA fits its class means and covariance with its own ``fit_base``,
and the nearest-class-mean baseline and the SAE fit their class statistics
on the base features.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader

from zsl_cl.compare.backbone import SharedBackbone
from zsl_cl.config import SAEConfig
from zsl_cl.core.cnn import FEATURE_DIM
from zsl_cl.data.classes import NUM_CLASSES

__all__ = [
    "STRATEGY_NAMES",
    "StrategyContext",
    "Learner",
    "AvalancheLearner",
    "build_learner",
    "check_strategy_spec",
]

STRATEGY_NAMES = ("sae", "ncm", "naive", "replay", "ewc", "lwf", "si", "icarl", "gdumb", "slda", "cumulative")

# Regularisation settings, not tuned for this stream. They are those of the
# Avalanche team's reference runs in ContinualAI/continual-learning-baselines:
# experiments/permuted_mnist/ewc.py, experiments/split_mnist/synaptic_intelligence.py
# and experiments/split_mnist/lwf.py.
EWC_LAMBDA = 1.0
SI_LAMBDA = 1.0
SI_EPS = 0.001
LWF_ALPHA = 1.0
LWF_TEMPERATURE = 1.0


@dataclass
class StrategyContext:
    """Inputs of a strategy builder for one (strategy, seed) job."""

    name: str
    backbone: SharedBackbone
    config: SAEConfig  # the backbone recipe (epochs, lr, momentum, batch_size) and the SAE settings
    buffer_size: int
    budget: str
    seed: int
    device: str = "cpu"
    plugins: list = field(default_factory=list)  # the sample recorder and the seen-class restriction
    loggers: list = field(default_factory=list)  # Avalanche loggers for this job
    recorder: object | None = None


class Learner(Protocol):
    """One strategy as the compare job drives it."""

    avalanche_metrics: bool  # True when evaluate() reads Avalanche's EvaluationPlugin

    def train(self, experience) -> None: ...

    def evaluate(self, test_experiences) -> dict: ...


class AvalancheLearner:
    """Drive an Avalanche strategy: experience 0 without SGD epochs, later experiences with the recipe."""

    avalanche_metrics = True

    def __init__(
        self,
        strategy,
        prepare_base: Callable | None = None,
        base_epochs: int = 0,
        around: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ) -> None:
        self.strategy = strategy
        self.prepare_base = prepare_base  # extra state from experience 0 that zero epochs do not build
        self.base_epochs = base_epochs  # epochs on experience 0, whose backbone training is shared
        self.around = around  # a context entered around every training call

    def train(self, experience) -> None:
        with self.around():
            if experience.current_experience > 0:
                self.strategy.train(experience)
            else:
                self._train_base(experience)

    def _train_base(self, experience) -> None:
        epochs = self.strategy.train_epochs
        self.strategy.train_epochs = self.base_epochs
        try:
            if self.prepare_base is not None:
                self.prepare_base(self.strategy, experience)
            self.strategy.train(experience)
        finally:
            self.strategy.train_epochs = epochs

    def evaluate(self, test_experiences) -> dict:
        from zsl_cl.compare.metrics import read_avalanche_accuracies, read_avalanche_final

        metrics = self.strategy.eval(test_experiences)
        result = read_avalanche_accuracies(metrics, [e.current_experience for e in test_experiences])
        result.update(read_avalanche_final(metrics))
        return result


# ------------------------------------------------------------------ builders


def _sgd(model: nn.Module, config: SAEConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)


def _template_kwargs(ctx: StrategyContext) -> dict:
    from zsl_cl.compare.evaluation import make_evaluator

    return dict(
        train_mb_size=ctx.config.batch_size,
        train_epochs=ctx.config.epochs,
        eval_mb_size=1024,
        device=ctx.device,
        plugins=list(ctx.plugins),
        evaluator=make_evaluator(ctx.loggers),
        eval_every=-1,
    )


def _softmax_baseline(class_name: str, options: Callable[[StrategyContext], dict] = lambda ctx: {}):
    """Return a builder for an Avalanche strategy that fine-tunes the whole CNN with cross-entropy."""

    def build(ctx: StrategyContext) -> AvalancheLearner:
        from zsl_cl.compare import _avalanche

        strategy_class = getattr(_avalanche, class_name)
        model = ctx.backbone.copy_model()
        strategy = strategy_class(
            model=model, optimizer=_sgd(model, ctx.config), criterion=nn.CrossEntropyLoss(), **options(ctx), **_template_kwargs(ctx)
        )
        return AvalancheLearner(strategy)

    return build


def build_si(ctx: StrategyContext) -> AvalancheLearner:
    """Synaptic Intelligence, with the parameter trajectory recorded while the shared backbone trained."""
    from zsl_cl.compare._avalanche import SynapticIntelligence, SynapticIntelligencePlugin
    from zsl_cl.compare.fixes import copied_si_parameters

    model = ctx.backbone.copy_model()
    strategy = SynapticIntelligence(
        model=model,
        optimizer=_sgd(model, ctx.config),
        criterion=nn.CrossEntropyLoss(),
        si_lambda=SI_LAMBDA,
        eps=SI_EPS,
        **_template_kwargs(ctx),
    )
    # Zero epochs on experience 0 then turn the trajectory into importances,
    # exactly as SI does after training that experience itself.
    plugin = next(p for p in strategy.plugins if isinstance(p, SynapticIntelligencePlugin))
    state = copy.deepcopy(ctx.backbone.si_state)
    plugin.ewc_data, plugin.syn_data = state["ewc_data"], state["syn_data"]
    return AvalancheLearner(strategy, around=copied_si_parameters)


def build_icarl(ctx: StrategyContext) -> AvalancheLearner:
    """iCaRL on the backbone's feature extractor and head; exemplars are chosen by herding after experience 0."""
    from zsl_cl.compare._avalanche import ICaRL

    model = ctx.backbone.copy_model()
    strategy = ICaRL(
        feature_extractor=model.features,
        classifier=model.head,
        optimizer=_sgd(model, ctx.config),
        memory_size=ctx.buffer_size,
        buffer_transform=None,
        fixed_memory=True,
        **_template_kwargs(ctx),
    )
    return AvalancheLearner(strategy, prepare_base=_record_icarl_sizes)


def _record_icarl_sizes(strategy, experience) -> None:
    # iCaRL records these sizes in its first training forward pass, which zero
    # epochs on experience 0 never run; its class means need the embedding size.
    from zsl_cl.compare._avalanche import ICaRLPlugin

    plugin = next(p for p in strategy.plugins if isinstance(p, ICaRLPlugin))
    plugin.input_size = torch.Size((1, 28, 28))
    plugin.embedding_size = FEATURE_DIM
    plugin.output_size = NUM_CLASSES


def build_slda(ctx: StrategyContext) -> AvalancheLearner:
    """Deep Streaming LDA on the frozen CNN features."""
    from zsl_cl.compare._avalanche import StreamingLDA

    options = _template_kwargs(ctx)
    options["train_epochs"] = 1  # streaming: one pass, one update per sample
    # The mini-batch size only sets how many samples the feature extractor
    # takes at once, because fit() runs per sample. StreamingLDA's training
    # forward pass recomputes its 1568 x 1568 pseudo-inverse once per
    # mini-batch, so large batches avoid most of those recomputations.
    options["train_mb_size"] = 1024
    # The covariance stays as fit_base estimated it from the base data, and
    # only the class means stream. The plastic update is a 1568 x 1568
    # rank-one update per sample: with it, one seed's job took 532 s under
    # the full budget on a shared 2-core CPU, as long as all other strategies.
    with warnings.catch_warnings():
        # StreamingLDA 0.6.0 flags every SupervisedPlugin, because the base
        # class defines the backward callbacks that it never calls.
        warnings.filterwarnings("ignore", message=".*implements incompatible callbacks")
        strategy = StreamingLDA(
            slda_model=ctx.backbone.copy_model().features,
            criterion=nn.CrossEntropyLoss(),
            input_size=FEATURE_DIM,
            num_classes=NUM_CLASSES,
            streaming_update_sigma=False,
            **options,
        )
    return AvalancheLearner(strategy, prepare_base=_fit_slda_base)


@torch.no_grad()
def _fit_slda_base(strategy, experience) -> None:
    # StreamingLDA's own base initialisation: class means and a shrunk (OAS)
    # covariance of all base features, in place of one update per sample.
    strategy.model.eval()  # BatchNorm with its running statistics
    features, labels = [], []
    for batch in DataLoader(experience.dataset.eval(), batch_size=1024, shuffle=False):
        features.append(strategy.model(batch[0].to(strategy.device)))  # (B, 1568)
        labels.append(torch.as_tensor(batch[1]))
    with contextlib.redirect_stdout(io.StringIO()):  # fit_base prints progress lines
        strategy.fit_base(torch.cat(features), torch.cat(labels).to(strategy.device))


def build_ncm(ctx: StrategyContext) -> AvalancheLearner:
    """Nearest class mean on centred, normalised CNN features; experience 0 gets its one pass over the data."""
    from zsl_cl.compare.evaluation import make_evaluator
    from zsl_cl.compare.ncm import NCMStrategy

    strategy = NCMStrategy(
        features=ctx.backbone.copy_model().features,
        train_mb_size=ctx.config.batch_size,
        device=ctx.device,
        plugins=list(ctx.plugins),
        evaluator=make_evaluator(ctx.loggers),
    )
    return AvalancheLearner(strategy, base_epochs=1)


def build_sae(ctx: StrategyContext) -> Learner:
    """Build the SAE strategy on the shared backbone, so that experience 0 fits W_l and the SAE without SGD."""
    from zsl_cl.compare.sae import RecordedSAE, SAELearner
    from zsl_cl.plugin_manager import collect_components, get_plugin_manager

    plugin_manager = get_plugin_manager()
    strategy = RecordedSAE(
        recorder=ctx.recorder,
        config=ctx.config,
        components=collect_components(plugin_manager),
        hook=plugin_manager.hook,
        seed=ctx.seed,
        device=ctx.device,
        backbone=ctx.backbone.copy_model(),
        full_budget=ctx.budget == "full",
    )
    return SAELearner(strategy)


BUILDERS: dict[str, Callable[[StrategyContext], Learner]] = {
    "sae": build_sae,
    "ncm": build_ncm,
    "naive": _softmax_baseline("Naive"),
    "replay": _softmax_baseline("Replay", lambda ctx: {"mem_size": ctx.buffer_size}),
    "ewc": _softmax_baseline("EWC", lambda ctx: {"ewc_lambda": EWC_LAMBDA, "mode": "separate"}),
    "lwf": _softmax_baseline("LwF", lambda ctx: {"alpha": LWF_ALPHA, "temperature": LWF_TEMPERATURE}),
    "si": build_si,
    "icarl": build_icarl,
    "gdumb": _softmax_baseline("GDumb", lambda ctx: {"mem_size": ctx.buffer_size}),
    "slda": build_slda,
    "cumulative": _softmax_baseline("Cumulative"),
}
assert tuple(BUILDERS) == STRATEGY_NAMES


def check_strategy_spec(name: str) -> str:
    """Return ``name`` if it is a built-in strategy or an importable ``module:attr`` builder, else raise ValueError."""
    if name in BUILDERS:
        return name
    if ":" in name:
        _import_builder(name)
        return name
    raise ValueError(f"unknown strategy {name!r}: choose from {', '.join(STRATEGY_NAMES)}, or all")


def build_learner(ctx: StrategyContext) -> Learner:
    """Build the learner for ``ctx.name``: a built-in strategy or a ``module:attr`` builder called with ``ctx``."""
    builder = BUILDERS.get(ctx.name) or _import_builder(ctx.name)
    return builder(ctx)


def _import_builder(spec: str) -> Callable[[StrategyContext], Learner]:
    module_name, _, attr = (part.strip() for part in spec.partition(":"))
    try:
        builder = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, SyntaxError) as error:
        raise ValueError(
            f"cannot load strategy builder {spec!r} ({type(error).__name__}: {error}): "
            "give module:attr of an importable callable, or a built-in name such as naive"
        ) from None
    if not callable(builder):
        raise ValueError(f"strategy builder {spec!r} is not callable: point module:attr at a function that takes a StrategyContext")
    return builder
