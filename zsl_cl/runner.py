"""The evaluate job: build the stream, walk its experiences with the SAE strategy, collect metrics."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from zsl_cl.config import SAEConfig
from zsl_cl.data.classes import CLASS_NAMES
from zsl_cl.streams import STREAMS, build_stream, plan_stream

__all__ = ["EvaluateRequest", "run_evaluate", "check_device"]


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

    def describe(self) -> dict:
        """Return the settings that the output JSON records as its config."""
        settings = asdict(self)
        settings["config"] = self.config.to_dict()
        settings["data_dir"] = str(self.data_dir) if self.data_dir else None
        return settings


def check_device(device: str) -> str:
    """Return ``device`` if usable, else raise a ValueError that says what to pass instead."""
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device} requested but CUDA is not available here: use --device cpu")
        return device
    raise ValueError(f"unknown device {device!r}: use cpu or cuda")


def run_evaluate(request: EvaluateRequest, plugin_manager, components, *, on_experience: Callable[[dict], None] | None = None, progress_plugins=()) -> dict:
    """Run the whole stream and return the results dict that ``--output`` writes as JSON."""
    from zsl_cl.data import default_data_dir, load_source
    from zsl_cl.training.strategy import SAEStrategy

    started = time.perf_counter()
    if request.stream not in STREAMS:
        raise ValueError(f"unknown stream {request.stream!r}: choose one of {', '.join(STREAMS)}")
    check_device(request.device)
    layout = plan_stream(unseen=request.unseen, split=request.split, base_classes=request.base_classes, classes_per_exp=request.classes_per_exp, seed=request.seed)
    data = load_source(request.source, request.data_dir or default_data_dir(), seed=request.seed, download=request.download)
    benchmark = build_stream(data, layout)
    data_seconds = time.perf_counter() - started

    strategy = SAEStrategy(config=request.config, components=components, hook=plugin_manager.hook, seed=request.seed, device=request.device, plugins=progress_plugins)
    experiences = []
    for train_exp, test_exp in zip(benchmark.train_stream, benchmark.test_stream):
        strategy.train(train_exp)
        index = train_exp.current_experience
        accuracy = strategy.evaluate_seen(benchmark.test_stream[: index + 1])
        record = {
            "index": index,
            "new_classes": _names(train_exp.classes_in_this_experience),
            "seen_classes": _names(strategy.references.classes),
            "accuracy": accuracy["top1"],
            "top3": accuracy["top3"],
            "adapt_seconds": strategy.adapt_seconds[-1],
        }
        plugin_manager.hook.after_experience_evaluated(strategy=strategy, experience_index=index, metrics=record)
        experiences.append(record)
        if on_experience is not None:
            on_experience(record)

    mappings = strategy.final_mappings(benchmark.test_stream)
    return {
        "stream": request.stream,
        "source": request.source,
        "seed": request.seed,
        "preset": request.preset,
        "config": request.describe(),
        "data": {"description": data.description, "train_samples": int(len(data.train_labels)), "test_samples": int(len(data.test_labels))},
        "experiences": experiences,
        "final": {"accuracy": experiences[-1]["accuracy"], "mappings": mappings},
        "timing": {"data_seconds": data_seconds, **strategy.timings, "total_seconds": time.perf_counter() - started},
    }


def _names(classes) -> list[str]:
    return [CLASS_NAMES[c] for c in sorted(classes)]
