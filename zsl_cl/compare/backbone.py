"""The shared backbone: the CNN trained once per seed on experience 0, which every strategy starts from."""

from __future__ import annotations

import copy
import io
import time
from dataclasses import dataclass

import torch

from zsl_cl.config import SAEConfig
from zsl_cl.core.cnn import CharacterCNN

__all__ = ["SharedBackbone", "train_backbone"]


@dataclass
class SharedBackbone:
    """The trained CNN, the Synaptic Intelligence state recorded while it trained, and the training time."""

    model: CharacterCNN
    si_state: dict  # SynapticIntelligencePlugin's ewc_data and syn_data after experience 0
    train_seconds: float

    def copy_model(self) -> CharacterCNN:
        """Return a private copy of the trained CNN, so that no strategy changes another's weights."""
        return copy.deepcopy(self.model)

    def to_bytes(self) -> bytes:
        """Serialise for another process: a few megabytes, so it travels through any executor."""
        buffer = io.BytesIO()
        torch.save({"model": self.model, "si_state": self.si_state, "train_seconds": self.train_seconds}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes) -> "SharedBackbone":
        # weights_only=False because the payload contains whole modules. It only
        # ever comes from train_backbone in the same run.
        state = torch.load(io.BytesIO(payload), weights_only=False)
        return cls(model=state["model"], si_state=state["si_state"], train_seconds=state["train_seconds"])


def train_backbone(base_experience, config: SAEConfig, seed: int, device: str = "cpu", si_eps: float = 1e-7) -> SharedBackbone:
    """Train the CNN on experience 0 with the SAE strategy's recipe and seeding.

    The seed, the model construction and Avalanche's SGD loop run in the same
    order as in SAEStrategy, so the SAE gets the backbone that it would train
    itself. A Synaptic Intelligence plugin watches the same loop: its penalty
    is zero on the first experience, so it leaves training unchanged, and the
    parameter trajectory it records is the state that SI needs from
    experience 0. ``si_eps`` must be the SI strategy's damping, because the
    importances accumulated here use it.
    """
    from zsl_cl._avalanche import SupervisedTemplate
    from zsl_cl.compare._avalanche import SynapticIntelligencePlugin
    from zsl_cl.training.strategy import silent_evaluator
    from zsl_cl.compare.fixes import copied_si_parameters
    from zsl_cl.training.recipe import HoldOutPlugin, build_backbone, build_optimizer, hold_out_fraction, recipe_plugins

    torch.manual_seed(seed)  # the initial weights and the mini-batch order, as in SAEStrategy
    model = build_backbone(config)
    optimizer = build_optimizer(model, config)
    observer = SynapticIntelligencePlugin(si_lambda=0.0, eps=si_eps)
    # The SAE calibrates on base samples its backbone never trained on, so they are held out here too.
    fraction = hold_out_fraction(config)
    hold_out = [HoldOutPlugin(fraction, seed)] if fraction > 0 else []
    evaluator = silent_evaluator()
    template = SupervisedTemplate(
        model=model,
        optimizer=optimizer,
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=config.batch_size,
        train_epochs=config.epochs,
        eval_mb_size=1024,
        device=device,
        plugins=[*recipe_plugins(config, seed), *hold_out, observer],
        evaluator=evaluator,
        eval_every=-1,
    )

    start = time.perf_counter()
    with copied_si_parameters():
        template.train(base_experience)
    seconds = time.perf_counter() - start
    model.eval()
    si_state = {"ewc_data": observer.ewc_data, "syn_data": observer.syn_data}
    return SharedBackbone(model=model.cpu(), si_state=si_state, train_seconds=seconds)
