"""The evaluate job: build the stream, walk its experiences with the SAE strategy, collect metrics."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from zsl_cl.config import SAEConfig
from zsl_cl.data.classes import CLASS_NAMES
from zsl_cl.streams import STREAMS, build_stream, plan_stream

__all__ = ["EvaluateRequest", "run_evaluate", "check_device", "check_enough_shots", "check_finite_state", "deterministic_algorithms"]


@dataclass(frozen=True)
class EvaluateRequest:
    """Everything that selects the data, the stream and the method for one run."""

    config: SAEConfig
    preset: str = "default"
    stream: str = "emnist-incremental"
    source: str = "mnist+emnist"
    data_dir: Path | None = None
    download: bool = True
    split: str | None = None
    unseen: str | None = None
    base_classes: int | None = None
    classes_per_exp: int = 3
    seed: int = 0
    device: str = "cpu"
    expand_head: bool = False
    open_world: bool = False

    def describe(self) -> dict:
        """Return the settings that the output JSON records as its config."""
        settings = asdict(self)
        settings["config"] = self.config.to_dict()
        settings["data_dir"] = str(self.data_dir) if self.data_dir else None
        return settings


def check_device(device: str) -> str:
    """Return ``device`` if usable, else raise a ValueError that names the device to pass instead."""
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device} requested but CUDA is not available here: use --device cpu")
        return device
    raise ValueError(f"unknown device {device!r}: use cpu or cuda")


@contextmanager
def deterministic_algorithms(device: str = "cpu"):
    """Make torch pick deterministic kernels for the duration, then restore the previous setting.

    On the CPU the same command and seed then give the same bits, given the
    same torch build and thread count (``torch.get_num_threads()``), because
    a different thread count splits reductions differently. On CUDA, kernels
    without a deterministic version warn rather than fail, and cuBLAS is
    deterministic only when ``CUBLAS_WORKSPACE_CONFIG`` is set before it
    starts, so it is set here unless the environment already sets it.
    """
    if device != "cpu":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous, previous_warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=device != "cpu")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)


def check_finite_state(strategy, index: int) -> None:
    """Raise a ValueError when the latents of experience ``index`` contain NaN or Inf.

    The SAE encoder W and the projection W_l are checked when they are
    solved, so a non-finite latent code comes from a non-finite CNN feature.
    """
    latents = (strategy.references.vectors, strategy.shot_latents, strategy.base_latents)
    if not all(bool(torch.isfinite(tensor).all()) for tensor in latents):
        raise ValueError(
            f"the CNN features of experience {index} contain NaN or Inf, so the backbone has diverged or was altered: "
            "rerun with another --seed or fewer --epochs, and check any --plugin that changes the model"
        )


def check_enough_shots(train_labels, layout, shots: int) -> None:
    """Raise a ValueError now, before training, if a new class has fewer training samples than ``shots``."""
    counts = np.bincount(np.asarray(train_labels), minlength=len(CLASS_NAMES))
    for index, classes in enumerate(layout.experiences[1:], start=1):
        for c in sorted(classes):
            if counts[c] < shots:
                raise ValueError(
                    f"class {CLASS_NAMES[c]!r} of experience {index} has {counts[c]} training samples, "
                    f"fewer than --shots {shots}: use --shots {counts[c]} or fewer"
                )


def run_evaluate(
    request: EvaluateRequest,
    plugin_manager,
    components,
    *,
    on_experience: Callable[[dict], None] | None = None,
    progress_plugins=(),
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_note: Callable[[str], None] | None = None,
) -> dict:
    """Run the whole stream and return the results dict that ``--output`` writes as JSON.

    With ``checkpoint_dir``, the state after each experience is saved there.
    With ``resume`` as well, the run continues after the last experience
    saved in that folder. Wall-clock times go to ``timing`` and to each
    experience's ``adapt_seconds``. Everything else is the same for the same
    request on the same machine, resumed or not.
    """
    from zsl_cl.training.checkpoint import CheckpointStore

    started = time.perf_counter()
    if request.stream not in STREAMS:
        raise ValueError(f"unknown stream {request.stream!r}: choose one of {', '.join(STREAMS)}")
    if resume and checkpoint_dir is None:
        raise ValueError("--resume continues a run from its --checkpoint-dir: pass --checkpoint-dir as well")
    if request.open_world and (checkpoint_dir is not None or request.expand_head):
        raise ValueError("--open-world runs without labels after experience 0: drop --checkpoint-dir and --expand-head")
    check_device(request.device)
    layout = plan_stream(unseen=request.unseen, split=request.split, base_classes=request.base_classes, classes_per_exp=request.classes_per_exp, seed=request.seed)
    store = CheckpointStore(checkpoint_dir, request.describe()) if checkpoint_dir is not None else None
    complete = store.open(resume) if store is not None else 0

    benchmark, data_summary = _load_stream(request, layout)
    if store is not None:
        store.check_data(data_summary)
    data_seconds = time.perf_counter() - started

    if request.open_world:
        return _run_open_world(request, plugin_manager, components, benchmark, data_summary, started, on_experience, progress_plugins)

    with deterministic_algorithms(request.device):
        strategy = _create_strategy(request, plugin_manager, components, progress_plugins)
        experiences = _resume(store, strategy, resume, on_note)
        for record in experiences:
            if on_experience is not None:
                on_experience(record)
        for train_exp in benchmark.train_stream[len(experiences) :]:
            record = _run_experience(strategy, train_exp, benchmark.test_stream, plugin_manager)
            experiences.append(record)
            if store is not None:
                store.save(strategy, experiences, data_summary)
            if on_experience is not None:
                on_experience(record)
        mappings = strategy.final_mappings(benchmark.test_stream)

    return {
        **_results_header(request, data_summary),
        "experiences": experiences,
        "final": {"accuracy": experiences[-1]["accuracy"], "mappings": mappings},
        "timing": {
            "data_seconds": data_seconds,
            **strategy.timings,
            "total_seconds": time.perf_counter() - started,
            "resumed_after_experience": complete - 1 if complete else None,
        },
    }


def _load_stream(request: EvaluateRequest, layout):
    """Load the data, build the Avalanche benchmark, and return it with a summary of the data for the JSON."""
    from zsl_cl.data import default_data_dir, load_source, size_normalised

    data = load_source(request.source, request.data_dir or default_data_dir(), seed=request.seed, download=request.download)
    data = size_normalised(data, request.config.size_normalise)
    benchmark = build_stream(data, layout)
    check_enough_shots(data.train_labels, layout, request.config.shots)
    summary = {"description": data.description, "train_samples": int(len(data.train_labels)), "test_samples": int(len(data.test_labels))}
    return benchmark, summary


def _run_open_world(request, plugin_manager, components, benchmark, data_summary, started, on_experience, progress_plugins) -> dict:
    """Train on experience 0, then find the later classes without labels; return the results dict."""
    from zsl_cl.training.open_world import walk_open_world

    with deterministic_algorithms(request.device):
        strategy = _create_strategy(request, plugin_manager, components, progress_plugins)
        base = _run_experience(strategy, benchmark.train_stream[0], benchmark.test_stream, plugin_manager)
        if on_experience is not None:
            on_experience(base)
        records = walk_open_world(strategy, benchmark, on_experience=on_experience)
    return {
        **_results_header(request, data_summary),
        "experiences": [base],
        "open_world": {"novelty_threshold": strategy.novelty_threshold, "experiences": records},
        "timing": {**strategy.timings, "total_seconds": time.perf_counter() - started},
    }


def _create_strategy(request: EvaluateRequest, plugin_manager, components, progress_plugins):
    from zsl_cl.training.strategy import SAEStrategy

    options = {"expand_head": True} if request.expand_head else {}
    if request.open_world:
        # A tenth of the base training data is held out to calibrate the novelty threshold.
        options["validation_fraction"] = 0.1
    return SAEStrategy(
        config=request.config, components=components, hook=plugin_manager.hook, seed=request.seed,
        device=request.device, plugins=progress_plugins, **options,
    )


def _resume(store, strategy, resume: bool, on_note) -> list[dict]:
    """Restore the checkpoint, if there is one, and return the records of its complete experiences."""
    note = on_note or (lambda text: None)
    if store is None:
        return []
    if store.manifest is None:
        if resume:
            note(f"No checkpoint in {store.folder} yet: starting at experience 0 and saving one after each experience")
        else:
            note(f"Saving a checkpoint in {store.folder} after each experience")
        return []
    experiences = store.restore(strategy)
    note(f"Resumed from the checkpoint in {store.folder}: experiences 0 to {experiences[-1]['index']} are complete")
    return experiences


def _run_experience(strategy, train_exp, test_stream, plugin_manager) -> dict:
    """Adapt to one experience, evaluate every class seen so far, and return its record."""
    index = train_exp.current_experience
    try:
        strategy.train(train_exp)
    except torch.linalg.LinAlgError as error:
        # The ridge solve factors FᵀF + ridge·I, which is positive definite for
        # finite features, so its failure means the features are not finite.
        raise ValueError(
            f"a linear solve failed in experience {index} ({' '.join(str(error).split()).rstrip('.')}): "
            "the CNN features contain NaN or Inf; rerun with another --seed or fewer --epochs"
        ) from None
    check_finite_state(strategy, index)

    accuracy = strategy.evaluate_seen(test_stream[: index + 1])
    record = {
        "index": index,
        "new_classes": _names(train_exp.classes_in_this_experience),
        "seen_classes": _names(strategy.references.classes),
        "accuracy": accuracy["top1"],
        "top3": accuracy["top3"],
        "adapt_seconds": strategy.adapt_seconds[-1],
    }
    for key in ("head_top1", "head_top3"):
        if key in accuracy:
            record[key] = accuracy[key]
    record["novelty_auroc"] = strategy.novelty_auroc(test_stream[: index + 1], test_stream[index + 1 :])
    plugin_manager.hook.after_experience_evaluated(strategy=strategy, experience_index=index, metrics=record)
    return record


def _results_header(request: EvaluateRequest, data_summary: dict) -> dict:
    """Return the keys that open every results dict: what ran, on which data, with which settings."""
    return {
        "stream": request.stream,
        "source": request.source,
        "seed": request.seed,
        "preset": request.preset,
        "config": request.describe(),
        "data": data_summary,
    }


def _names(classes) -> list[str]:
    return [CLASS_NAMES[c] for c in sorted(classes)]
