"""The settings of one compare run, and the parsing of its list-valued options."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from zsl_cl.compare.budgets import BUDGETS
from zsl_cl.compare.loggers import parse_loggers
from zsl_cl.compare.strategies import STRATEGY_NAMES, check_strategy_spec
from zsl_cl.config import SAEConfig

__all__ = ["CompareRequest", "EXECUTORS", "DEFAULT_BUFFER_SIZE", "parse_strategies", "parse_seeds"]

EXECUTORS = ("local", "ray")

# Avalanche 0.6.0's default mem_size for Replay and GDumb. Replay, GDumb and
# iCaRL all get this many stored training samples.
DEFAULT_BUFFER_SIZE = 200


@dataclass(frozen=True)
class CompareRequest:
    """Everything that selects the data, the stream, the strategies and how the jobs run."""

    config: SAEConfig
    strategies: tuple[str, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    budget: str = "one-shot"
    buffer_size: int = DEFAULT_BUFFER_SIZE
    preset: str = "default"
    source: str = "mnist+emnist"
    data_dir: Path | None = None
    download: bool = True
    split: str | None = None
    unseen: str | None = None
    classes_per_exp: int = 3
    samples_per_class: int | None = None
    jobs: int = 1
    executor: str = "local"
    ray_address: str | None = None
    loggers: tuple[str, ...] = ()
    output_dir: Path | None = None
    device: str = "cpu"

    def validate(self) -> "CompareRequest":
        """Raise a ValueError naming the first invalid setting."""
        if not self.strategies:
            raise ValueError("--strategies is empty: list at least one strategy, for example --strategies sae,naive")
        for name in self.strategies:
            check_strategy_spec(name)
        if not self.seeds:
            raise ValueError("--seeds is empty: list at least one seed, for example --seeds 0,1,2")
        parse_seeds(",".join(str(seed) for seed in self.seeds))
        if self.budget not in BUDGETS:
            raise ValueError(f"unknown budget {self.budget!r}: choose one of {', '.join(BUDGETS)}")
        if self.buffer_size < 1:
            raise ValueError(f"invalid --buffer-size {self.buffer_size}: use 1 or more stored samples")
        if self.jobs < 1:
            raise ValueError(f"invalid --jobs {self.jobs}: use 1 or more parallel jobs")
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}: choose one of {', '.join(EXECUTORS)}")
        if self.ray_address is not None and self.executor != "ray":
            raise ValueError(f"--ray-address {self.ray_address} needs --executor ray: add it, or drop --ray-address")
        if self.samples_per_class is not None and self.samples_per_class < 1:
            raise ValueError(f"invalid --samples-per-class {self.samples_per_class}: use 1 or more")
        parse_loggers(",".join(self.loggers))
        return self

    def describe(self) -> dict:
        """Return the settings that the output JSON records."""
        settings = asdict(self)
        settings["config"] = self.config.to_dict()
        settings["data_dir"] = str(self.data_dir) if self.data_dir else None
        settings["output_dir"] = str(self.output_dir) if self.output_dir else None
        return settings


def parse_strategies(text: str) -> tuple[str, ...]:
    """Split a comma-separated strategy list; ``all`` expands to every built-in strategy.

    An entry with a colon is a ``module:attr`` spec of a custom strategy builder.
    """
    names: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        expanded = STRATEGY_NAMES if item == "all" else (check_strategy_spec(item),)
        names += [name for name in expanded if name not in names]
    if not names:
        raise ValueError(f"--strategies {text!r} names no strategy: use all, or a list such as sae,naive,replay")
    return tuple(names)


def parse_seeds(text: str) -> tuple[int, ...]:
    """Parse a comma-separated list of distinct seeds >= 0, such as ``0,1,2``."""
    seeds: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        try:
            seed = int(item)
        except ValueError:
            raise ValueError(f"invalid --seeds {text!r}: {item!r} is not an integer; use a list such as 0,1,2") from None
        if seed < 0:
            raise ValueError(f"invalid --seeds {text!r}: seed {seed} is negative; use seeds >= 0")
        if seed in seeds:
            raise ValueError(f"invalid --seeds {text!r}: seed {seed} is listed twice; list each seed once")
        seeds.append(seed)
    return tuple(seeds)
