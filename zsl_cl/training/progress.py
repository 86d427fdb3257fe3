"""An Avalanche plugin that shows backbone training as a rich progress bar."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from zsl_cl._avalanche import SupervisedPlugin

__all__ = ["RichProgressPlugin"]


class RichProgressPlugin(SupervisedPlugin):
    """Draws one bar per training epoch with the running mean loss."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None
        self._task = None
        self._loss_sum = 0.0
        self._batches = 0

    def before_training_epoch(self, strategy, **kwargs):
        self._progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        epoch = strategy.clock.train_exp_epochs + 1
        self._task = self._progress.add_task(
            "train", total=len(strategy.dataloader), epoch=epoch, epochs=strategy.train_epochs, loss=float("nan")
        )
        self._loss_sum, self._batches = 0.0, 0

    def after_training_iteration(self, strategy, **kwargs):
        self._loss_sum += float(strategy.loss.detach())
        self._batches += 1
        self._progress.update(self._task, advance=1, loss=self._loss_sum / self._batches)

    def after_training_epoch(self, strategy, **kwargs):
        self._progress.stop()
        self._progress = None
