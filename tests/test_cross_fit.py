"""Cross-fitted scan: K models on TF-grouped folds, each TF scored by a model that never
saw it as a TF; resumable; from the library and the CLI. Synthetic planted data only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.synthetic import planted_dataset, write_pairs, write_tsv
from tfcnn import api
from tfcnn.errors import TfcnnInputError
from tfcnn.inference.scan import cross_fit_scan, work_dir_for
from tfcnn.pairs import tf_group_folds
from tfcnn.runtime import torch_threads


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("synthetic_cross_fit")
    expr, pairs = planted_dataset(n_tfs=12, targets_per_tf=4, n_background=20, n_samples=10, seed=4)
    write_tsv(expr, d / "synthetic_expression.tsv")
    write_pairs(pairs, d / "synthetic_pairs.tsv")
    return d / "synthetic_expression.tsv", d / "synthetic_pairs.tsv"


def test_each_tf_is_scored_by_the_model_that_never_saw_it(files, tmp_path: Path) -> None:
    expression, known = files
    out = tmp_path / "edges.parquet"
    stages: list[tuple[int, str]] = []

    def stop_after_first_model(k: int, stage: str) -> None:
        stages.append((k, stage))
        if (k, stage) == (1, "training"):
            raise KeyboardInterrupt  # killed while training the second model

    options = dict(seed=3, train={"epochs": 1, "batch_size": 32}, negatives="tf-matched")
    with torch_threads(1), pytest.raises(KeyboardInterrupt):
        cross_fit_scan(expression, known, out, 3, on_fold=stop_after_first_model, **options)
    assert not out.exists() and (work_dir_for(out) / "model-0").is_dir()
    with torch_threads(1):
        result = cross_fit_scan(expression, known, out, 3, **options)
    assert [f.resumed for f in result.folds] == [True, False, False]
    assert not work_dir_for(out).exists()
    table = pd.read_parquet(out)
    assert list(table.columns) == ["tf", "target", "probability", "fold"]
    assert table.groupby("tf")["fold"].nunique().max() == 1  # one model per TF
    # the same folds, rebuilt: a TF with known pairs is scored by the fold holding it out
    pairs = api.build_pairs(expression, known, negatives="tf-matched", seed=3)
    folds = tf_group_folds(pairs, 3, seed=3)
    for k, fold in enumerate(folds):
        t = fold.table
        held_out = set(t.loc[t.split == "test", "tf"])
        trained_on = set(t.loc[t.split == "train", "tf"])
        scored = set(table.loc[table.fold == k, "tf"])
        assert held_out <= scored and not (scored & trained_on)
    assert result.rows == len(table) == result.pairs
    assert result.unseen_tfs == len(set(table.tf)) - len({tf for f in folds for tf in f.table.tf})


def test_cross_fit_cli_writes_beeline_ranked_edges(files, tmp_path: Path) -> None:
    from tests.test_bad_inputs import refused, run, succeeded

    expression, known = files
    home = tmp_path / "synthetic_home"
    out = tmp_path / "rankedEdges.csv"
    text = succeeded(
        run(
            *("scan", "--cross-fit", "3", "-x", expression, "-i", known, "--epochs", "1"),
            *("--layout", "beeline", "--top-k", "3", "-o", out),
            home=home,
        )
    )
    assert "fold 2:" in text and "column 'fold'" in text
    edges = pd.read_csv(out, sep="\t")
    assert list(edges.columns) == ["Gene1", "Gene2", "EdgeWeight", "fold"]
    refused(
        run("scan", "--cross-fit", "3", "-x", expression, "-o", tmp_path / "x.csv", home=home),
        "--cross-fit needs --expression and --interactions",
    )
    with pytest.raises(TfcnnInputError, match="at least 2 folds"):
        cross_fit_scan(expression, known, tmp_path / "y.csv", 1)
