"""The demo on the bundled real data (2 epochs to stay fast): outputs and what they show,
and the same numbers whether its four models train in parallel or one after another."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from tfcnn.errors import OutputExistsError
from tfcnn.model.estimator import PairCNN
from tfcnn.study.demo import default_output, run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "results"
    console = Console(file=open(out.parent / "stdout.txt", "w"), width=100)  # noqa: SIM115
    # two workers, one thread each: the four models train two at a time
    result = run_demo(out, epochs=2, progress=False, console=console, threads=2)
    console.file.close()
    return result, (out.parent / "stdout.txt").read_text()


def test_writes_models_metrics_and_predictions(demo) -> None:
    result, _ = demo
    out = result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert [(r["split"], r["negatives"]) for r in metrics["protocols"]] == [
        ("random", "random"),
        ("random", "tf-matched"),
        ("tf-holdout", "random"),
        ("tf-holdout", "tf-matched"),
    ]
    for row in metrics["protocols"]:
        model = PairCNN.load(out / row["model"])
        assert model.n_samples == 131
        assert model.record_.metrics["test"]["auroc"] == pytest.approx(row["cnn_auroc"])
        assert (out / "predictions" / f"{row['protocol']}.test.tsv").is_file()
        assert 0.0 <= row["cnn_within_target_auroc"] <= 1.0
        margin = row["within_target_vs_best_control"]
        assert margin["low"] <= margin["difference"] <= margin["high"]
    data = metrics["data"]
    assert data["positives"]["input_pairs"] == 18_005
    assert data["positives"]["kept"] == 17_994  # the 11 self-pairs dropped
    assert data["n_regulators"] == 53
    # negatives exclude only the positives' own pairs (DAP-seq-only pairs may be negatives)
    assert data["negative_pool"]["excluded_evidence"] == ["CHIPSeq", "Litterature", "TARGET"]
    assert "only the positives' own pairs" in data["negative_pool"]["policy"]
    assert (out / "table.txt").read_text().count("tf-holdout") >= 2


def test_prints_the_side_by_side_table(demo) -> None:
    _, stdout = demo
    for text in ("Pearson", "tf-matched", "tf-holdout", "within-", "Results written to"):
        assert text in stdout


def test_random_protocol_shows_the_artefact(demo) -> None:
    """Random split + random negatives: the CNN far above Pearson on the same pairs."""
    rows = {(r["split"], r["negatives"]): r for r in demo[0].rows}
    study = rows[("random", "random")]
    assert study["cnn_auroc"] > study["pearson_auroc"] + 0.1
    # tf-holdout never shares a regulator between train and test
    assert rows[("tf-holdout", "tf-matched")]["test_regulators"] >= 3


def test_never_overwrites(demo, tmp_path) -> None:
    result, _ = demo
    with pytest.raises(OutputExistsError):
        run_demo(result.output, epochs=1, progress=False, console=Console(quiet=True))
    (tmp_path / "demo").mkdir()
    assert default_output(tmp_path) == tmp_path / "demo-2"


def test_parallel_and_sequential_runs_give_the_same_numbers(demo, tmp_path) -> None:
    """Each model is a one-thread run wherever it trains: --threads never changes a number."""
    parallel, _ = demo
    sequential = run_demo(
        tmp_path / "seq", epochs=2, progress=False, console=Console(quiet=True), threads=1
    )
    assert sequential.rows == parallel.rows
    for row in parallel.rows:
        weights = [
            (r.output / row["model"] / "weights.safetensors").read_bytes()
            for r in (parallel, sequential)
        ]
        assert weights[0] == weights[1], row["protocol"]
        tables = [
            (r.output / "predictions" / f"{row['protocol']}.test.tsv").read_text()
            for r in (parallel, sequential)
        ]
        assert tables[0] == tables[1]
    assert json.loads((parallel.output / "metrics.json").read_text())["threads_per_model"] == 1
