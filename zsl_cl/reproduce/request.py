"""The settings of one reproduction, with the parsing and checks of its command-line values."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from zsl_cl.config import SAEConfig
from zsl_cl.data.classes import SPLITS

__all__ = ["ReproduceRequest", "parse_int_list"]


def parse_int_list(text: str, option: str, example: str) -> tuple[int, ...]:
    """Parse comma-separated integers such as "0,1,2". "none" or an empty string gives an empty tuple."""
    if text.strip().lower() in ("", "none"):
        return ()
    values = []
    for part in text.split(","):
        try:
            values.append(int(part.strip()))
        except ValueError:
            raise ValueError(f"invalid {option} {text!r}: {part.strip()!r} is not an integer; use comma-separated integers such as {example}") from None
    if len(set(values)) != len(values):
        raise ValueError(f"invalid {option} {text!r}: a value is repeated; list each value once, such as {example}")
    return tuple(values)


@dataclass(frozen=True)
class ReproduceRequest:
    """Everything that selects the data, the method and the outputs of one reproduction."""

    config: SAEConfig
    output_dir: Path
    run: str = "R0"
    preset: str = "default"
    source: str = "mnist+emnist"
    data_dir: Path | None = None
    download: bool = True
    seeds: tuple[int, ...] = (0,)
    draws: int = 10
    shots_curve: tuple[int, ...] = (1, 2, 5, 10)
    figures: bool = True
    decoder: str = "tconv"
    decoder_epochs: int = 4
    train_per_class: int | None = None  # None: every training image
    device: str = "cpu"

    def validate(self) -> "ReproduceRequest":
        """Raise a ValueError naming the first invalid setting, before any data is read."""
        if self.run not in SPLITS:
            raise ValueError(f"unknown run {self.run!r}: choose one of {', '.join(SPLITS)}")
        if self.draws < 1:
            raise ValueError(f"invalid --draws {self.draws}: use 1 or more reference draws")
        if not self.seeds:
            raise ValueError("--seeds is empty: list at least one seed, such as 0 or 0,1,2")
        if min(self.seeds) < 0:
            raise ValueError(f"invalid --seeds {','.join(map(str, self.seeds))}: use seeds >= 0")
        if self.shots_curve and min(self.shots_curve) < 1:
            raise ValueError(f"invalid --shots-curve {','.join(map(str, self.shots_curve))}: use shot counts >= 1, such as 1,2,5,10")
        if self.decoder_epochs < 1:
            raise ValueError(f"invalid --decoder-epochs {self.decoder_epochs}: use 1 or more")
        self._check_train_per_class()
        return self

    def _check_train_per_class(self) -> None:
        if self.train_per_class is None:
            return
        needed = max((self.config.shots, *self.shots_curve))
        if self.train_per_class < needed:
            raise ValueError(
                f"invalid --train-per-class {self.train_per_class}: the references need {needed} training images "
                f"per class (--shots and --shots-curve); use at least {needed}"
            )

    def describe(self) -> dict:
        """Return the settings that table1.json records as its config."""
        settings = asdict(self)
        settings["config"] = self.config.to_dict()
        settings["data_dir"] = str(self.data_dir) if self.data_dir else None
        settings["output_dir"] = str(self.output_dir)
        settings["seeds"] = list(self.seeds)
        settings["shots_curve"] = list(self.shots_curve)
        return settings
