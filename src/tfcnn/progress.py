"""Progress display for training: a rich progress bar over epochs, or nothing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .model.estimator import EpochCallback


def _describe(record: dict[str, Any]) -> str:
    parts = [f"loss {record['loss']:.3f}", f"acc {record['accuracy']:.3f}"]
    if record.get("val_auroc") is not None:
        parts.append(f"val AUROC {record['val_auroc']:.3f}")
    return "  ".join(parts)


@contextlib.contextmanager
def epoch_progress(
    epochs: int, label: str = "training", enabled: bool = True, console: Console | None = None
) -> Iterator[EpochCallback | None]:
    """Yield an ``on_epoch`` callback that advances a progress bar (None when disabled)."""
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=epochs, status="")

        def on_epoch(epoch: int, record: dict[str, Any]) -> None:
            bar.update(task, completed=epoch, status=_describe(record))

        yield on_epoch
