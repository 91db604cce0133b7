"""`tfcnn demo`: the main job on the bundled real data, and what its numbers mean.

Trains the published architecture on the bundled Arabidopsis nitrogen compendium
(2,286 genes x 131 conditions) with ConnecTF-validated TARGET + ChIP-seq + literature
edges as positives, under four protocols: split ``random`` vs ``tf-holdout`` crossed
with negatives ``random`` vs ``tf-matched``. For each it reports the CNN's test AUROC
and accuracy beside Pearson correlation's AUROC on the very same test pairs.

DAP-seq edges are not used as positives (in vitro binding, weaker evidence). Negatives
exclude only the positives' own pairs: a pair bound in DAP-seq alone may be a negative.
Excluding every ConnecTF edge would make negatives genes that no assay ever bound, and
"bound somewhere" would then separate positives from negatives (a label shortcut).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import __version__
from ..api import load_expression, load_interactions, scores_table, train
from ..io.atomic import atomic_dir, check_writable
from ..io.expression import ExpressionMatrix
from ..io.interactions import Interactions
from ..pairs import build_pair_set
from ..runtime import default_threads, stop_on_signals, torch_threads, worker_pool

DEMO_EVIDENCE = ("TARGET", "CHIPSeq", "Litterature")
PROTOCOLS = (
    ("random", "random"),
    ("random", "tf-matched"),
    ("tf-holdout", "random"),
    ("tf-holdout", "tf-matched"),
)

READING_GUIDE = """\
* target freq.: AUROC of a control that ignores expression and scores a pair by
  how often its target was a positive's target in training.
* within-target AUROC compares only pairs that share a target: recognising
  targets cannot raise it. Under random negatives recognising TFs still can (most
  negatives' "regulators" are not TFs: see the TF-only control win in row 1).
  Read it first, with the CNN's margin over the best control that never sees the
  TF-target relation (CI from resampling TFs; a CI that includes 0 means no
  evidence the CNN reads the pair).
How to read this table:
- random split + random negatives is the study's protocol. Most random
  negatives have a regulator that is not a TF at all, so a model scores well
  just by recognising TF profiles, and the same TFs reappear in the test set.
  Compare it with Pearson's AUROC on the same pairs.
- tf-holdout keeps each TF's pairs in one split: test TFs are never seen in
  training. tf-matched negatives pair each TF with its non-targets, so the TF's
  identity carries no information.
- Even tf-holdout + tf-matched is not a clean test: targets of positives are
  biased towards genes that many TFs regulate, while negative targets are
  drawn uniformly, so recognising such hub targets scores above 0.5 (see the
  target freq. column). Where that control matches or beats the CNN, the CNN's
  score is no evidence that it reads regulation from the profiles."""


@dataclass
class DemoResult:
    """Where the demo wrote its results and the rows of its table."""

    output: Path
    rows: list[dict[str, Any]]
    data: dict[str, Any]


def default_output(base: str | os.PathLike[str] = "results") -> Path:
    """``results/demo``, or ``results/demo-2``, ``-3``... : never an existing folder."""
    base = Path(base)
    candidate = base / "demo"
    n = 2
    while candidate.exists():
        candidate = base / f"demo-{n}"
        n += 1
    return candidate


def protocol_name(split: str, negatives: str) -> str:
    return f"{split}-split__{negatives}-negatives"


def run_demo(
    output: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    epochs: int = 30,
    force: bool = False,
    progress: bool = True,
    console: Console | None = None,
    threads: int | None = None,
) -> DemoResult:
    """Run the four protocols, print the table, write models + metrics.json to ``output``.

    The four models train as parallel runs of one thread each, ``threads`` at a time
    (default: the cores this process may use; 1 trains them one after the other here).
    Each run has one thread wherever it runs, so the numbers never depend on ``threads``.
    SIGINT/SIGTERM stop the workers and leave nothing under ``output``.
    """
    console = console or Console()
    out = Path(output) if output is not None else default_output()
    check_writable(out, force)  # before loading anything
    workers = min(len(PROTOCOLS), default_threads(threads))
    data = (
        load_expression("nitrogen-expression"),
        load_interactions("nitrogen-edges", evidence=DEMO_EVIDENCE),
    )
    console.print(
        f"[bold]tfcnn demo[/]: {data[0].n_genes:,} genes x {data[0].n_samples} conditions "
        f"(bundled nitrogen compendium); positives = ConnecTF {' + '.join(DEMO_EVIDENCE)} "
        f"edges; {len(PROTOCOLS)} models, {workers} at a time, one thread each"
    )
    with stop_on_signals(), atomic_dir(out, force=force) as tmp:
        jobs = [(split, negatives, seed, epochs, str(tmp)) for split, negatives in PROTOCOLS]
        found: dict[int, dict[str, Any]] = {}

        def done(i: int, row: dict[str, Any]) -> None:
            found[i] = row
            if progress:
                console.print(
                    f"  [{len(found)}/{len(jobs)}] {row['split']} / {row['negatives']}: "
                    f"CNN test AUROC {_fmt(row['cnn_auroc'])} ({row.pop('seconds'):.0f} s)"
                )
            else:
                row.pop("seconds")

        if workers <= 1:
            _receive(data)
            for i, job in enumerate(jobs):
                done(i, _train_protocol(*job))
        else:
            with worker_pool(workers, _receive, (data,)) as pool:
                futures = {pool.submit(_train_protocol, *job): i for i, job in enumerate(jobs)}
                for fut in as_completed(futures):
                    done(futures[fut], fut.result())
        rows = [found[i] for i in range(len(jobs))]
        meta = rows[0].pop("pairs_meta")
        for r in rows[1:]:
            r.pop("pairs_meta")
        data_summary = {
            "expression": meta["expression"],
            "positives": meta["positives"],
            "n_regulators": meta["n_regulators"],
            "top_regulator": meta["top_regulator"],
            "evidence": list(DEMO_EVIDENCE),
            "negative_pool": meta["negative_pool"],
        }
        _print_data(console, meta)
        metrics = {
            "tfcnn_version": __version__,
            "seed": seed,
            "epochs": epochs,
            "threads_per_model": 1,
            "data": data_summary,
            "protocols": rows,
            "command": f"tfcnn demo --seed {seed} --epochs {epochs}",
        }
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        table = render_table(rows)
        with (tmp / "table.txt").open("w") as fh:
            Console(file=fh, width=120).print(table)
            fh.write("\n" + READING_GUIDE + "\n")
    console.print(render_table(rows))
    console.print(READING_GUIDE)
    console.print(
        f"\nResults written to [bold]{out}[/]: metrics.json, table.txt, models/, predictions/"
    )
    return DemoResult(output=out, rows=rows, data=data_summary)


_data: tuple[ExpressionMatrix, Interactions] | None = None


def _receive(data: tuple[ExpressionMatrix, Interactions]) -> None:
    """Keep the demo's inputs in this process (a worker gets them once, not per model)."""
    global _data
    _data = data


def _train_protocol(
    split: str, negatives: str, seed: int, epochs: int, folder: str
) -> dict[str, Any]:
    """Build one protocol's pairs, train on one thread, write model and predictions
    under ``folder``; return the table row (with the pair set's summary and seconds)."""
    if _data is None:
        raise RuntimeError("the demo's inputs were not given to this process (_receive)")
    expression, positives = _data
    start = time.time()
    name = protocol_name(split, negatives)
    with torch_threads(1, blas=True):
        pairs = build_pair_set(
            expression,
            positives,
            negatives=negatives,
            split=split,
            seed=seed,
        )
        model = train(
            pairs,
            seed=seed,
            epochs=epochs,
            progress=False,
            output=Path(folder) / "models" / name,
        )
        table = scores_table(model, pairs, "test")
    predictions = Path(folder) / "predictions"
    predictions.mkdir(exist_ok=True)
    table.to_csv(predictions / f"{name}.test.tsv", sep="\t", index=False)
    test = model.record_.metrics["test"]
    counts = pairs.counts()
    return {
        "protocol": name,
        "split": split,
        "negatives": negatives,
        "n_train": counts["train"]["positives"] + counts["train"]["negatives"],
        "n_test": test["n"],
        "test_regulators": counts["test"]["regulators_in_positives"],
        "positives_kept": pairs.meta["positives"]["kept"],
        "cnn_auroc": test["auroc"],
        "cnn_auprc": test["auprc"],
        "cnn_accuracy": test["accuracy"],
        "cnn_within_target_auroc": test["methods"]["model"]["within_target_auroc"],
        "within_target_vs_best_control": test["versus_best_control"].get("within_target"),
        "pearson_auroc": test["methods"]["pearson"]["pooled_auroc"],
        "target_frequency_auroc": test["methods"]["target_frequency"]["pooled_auroc"],
        "model": f"models/{name}",
        "pairs_meta": pairs.meta,
        "seconds": time.time() - start,
    }


def _print_data(console: Console, meta: dict[str, Any]) -> None:
    pos = meta["positives"]
    dropped = ", ".join(f"{v:,} {k}" for k, v in pos["dropped"].items() if v) or "none"
    top = meta["top_regulator"]
    console.print(
        f"{pos['input_pairs']:,} known pairs -> {pos['kept']:,} positives from "
        f"{meta['n_regulators']} TFs (dropped: {dropped}); largest TF {top['id']} has "
        f"{top['positives']:,} ({top['share']:.0%}). Negatives: "
        f"{meta['negative_pool']['policy']}."
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _margin(v: dict[str, Any] | None) -> str:
    """'+0.012 (-0.010 to +0.030)': the CNN minus the best control, with its 95% CI."""
    if not v or v.get("difference") is None or v.get("low") is None:
        return "n/a"
    return f"{v['difference']:+.3f} ({v['low']:+.3f} to {v['high']:+.3f})"


def render_table(rows: list[dict[str, Any]]) -> Table:
    """The side-by-side protocol table."""
    table = Table(title="Test-set results on the same data, four evaluation protocols")
    for col in (
        "split",
        "negatives",
        "test\npairs",
        "test\nTFs",
        "CNN\nAUROC",
        "CNN within-\ntarget AUROC",
        "CNN minus best control,\nwithin target (95% CI)",
        "CNN\nacc.",
        "Pearson\nAUROC",
        "target\nfreq.*",
    ):
        table.add_column(
            col, justify="left" if col in ("split", "negatives") else "right", no_wrap=True
        )
    for r in rows:
        table.add_row(
            r["split"],
            r["negatives"],
            f"{r['n_test']:,}",
            str(r["test_regulators"]),
            _fmt(r["cnn_auroc"]),
            _fmt(r["cnn_within_target_auroc"]),
            _margin(r["within_target_vs_best_control"]),
            _fmt(r["cnn_accuracy"]),
            _fmt(r["pearson_auroc"]),
            _fmt(r["target_frequency_auroc"]),
        )
    return table
