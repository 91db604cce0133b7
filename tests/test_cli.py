"""The `tfcnn` command line, run in-process with typer's CliRunner on tiny synthetic data.

Every file here is synthetic (tests/synthetic.py): nothing is real expression data.
The contract checked for bad input: exit code 2, a one-paragraph "error: ..." on stderr
naming the file / line / ID / option, no traceback, and no output (nor temporary
``.name.*.tmp`` sibling) left behind.

This typer version's CliRunner has no ``mix_stderr``: ``result.output`` is stdout and
stderr interleaved, ``result.stdout`` / ``result.stderr`` are also available separately.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from tests.synthetic import planted_dataset, write_pairs, write_tsv
from tfcnn import __version__
from tfcnn.apps import console as cli_console
from tfcnn.apps.cli import app
from tfcnn.io.datasets import list_datasets

N_SAMPLES = 12
COMMANDS = ("datasets", "build-pairs", "train", "evaluate", "demo")
METRIC_KEYS = {"accuracy", "loss", "auroc", "auprc", "confusion"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# -- helpers ---------------------------------------------------------------------------
def plain(text: str) -> str:
    """Text without ANSI styling (in case FORCE_COLOR is set in the environment)."""
    return _ANSI.sub("", text)


def run(*args: object, columns: int = 200) -> Result:
    """Invoke the app in-process with its consoles ``columns`` wide.

    The width is pinned on the CLI's own console objects (rich fixes it at import when
    COLUMNS and LINES are both set, and TERM=dumb means 80) and, through COLUMNS/LINES,
    for the consoles typer creates to print help.
    """
    consoles = (cli_console.console, cli_console.err_console)
    saved = [(c._width, c._height) for c in consoles]
    for c in consoles:
        c._width, c._height = columns, 50
    try:
        env = {"COLUMNS": str(columns), "LINES": "50"}
        return CliRunner().invoke(app, [str(a) for a in args], env=env)
    finally:
        for c, (width, height) in zip(consoles, saved, strict=True):
            c._width, c._height = width, height


def ok(result: Result) -> str:
    """Assert success and return the plain output."""
    out = plain(result.output)
    assert result.exit_code == 0, out + repr(result.exception)
    assert result.exception is None
    return out


def user_error(result: Result, *fragments: str) -> str:
    """Assert the bad-input contract: exit 2, 'error:' on stderr naming ``fragments``."""
    out = plain(result.output)
    assert result.exit_code == 2, f"exit {result.exit_code}: {out}{result.exception!r}"
    # Anything other than SystemExit means an exception escaped (a traceback for users).
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in out
    err = plain(result.stderr)
    assert err.startswith("error: "), err
    assert err.count("error:") == 1
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    return err


def leftovers(folder: Path) -> list[str]:
    """Temporary siblings of an atomic write (``.name.XXXX.tmp`` / ``.old``)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def assert_nothing_written(output: Path) -> None:
    assert not output.exists(), f"partial output {output} left behind"
    assert leftovers(output.parent) == []


def build_args(cmd: str, expression: Path | str, interactions: Path | str, output: Path):
    """Arguments that read an expression matrix: build-pairs, or train building on the fly."""
    args = [cmd, "--expression", expression, "--interactions", interactions, "--output", output]
    return args + (["--epochs", "1"] if cmd == "train" else [])


def bad_copy(src: Path, dst: Path, edit) -> Path:
    """A copy of a synthetic TSV with ``edit(lines)`` applied (lines[0] is the header)."""
    lines = src.read_text().splitlines()
    edit(lines)
    dst.write_text("\n".join(lines) + "\n")
    return dst


# -- fixtures: synthetic files, one pair set and one model shared by the module ----------
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict[str, Path]:
    """Synthetic matrices with planted co-regulation: 12 samples, and a 10-sample one."""
    d = tmp_path_factory.mktemp("synthetic_cli")
    expr, known = planted_dataset(
        n_tfs=10, targets_per_tf=8, n_background=60, n_samples=N_SAMPLES, seed=1
    )
    write_tsv(expr, d / "synthetic_expression.tsv")
    write_pairs(known, d / "synthetic_pairs.tsv")
    expr10, known10 = planted_dataset(
        n_tfs=10, targets_per_tf=8, n_background=60, n_samples=10, seed=2
    )
    write_tsv(expr10, d / "synthetic_expression_10_samples.tsv")
    write_pairs(known10, d / "synthetic_pairs_10_samples.tsv")
    # Same genes and 12 samples, but the sample columns are named differently.
    renamed = pd.read_csv(d / "synthetic_expression.tsv", sep="\t", index_col=0)
    renamed.columns = [f"synthetic_other_sample_{j}" for j in range(N_SAMPLES)]
    renamed.to_csv(d / "synthetic_expression_renamed.tsv", sep="\t")
    return {
        "dir": d,
        "expression": d / "synthetic_expression.tsv",
        "interactions": d / "synthetic_pairs.tsv",
        "expression10": d / "synthetic_expression_10_samples.tsv",
        "interactions10": d / "synthetic_pairs_10_samples.tsv",
        "renamed": d / "synthetic_expression_renamed.tsv",
    }


@pytest.fixture(scope="module")
def pairset(synthetic, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "synthetic_pairs_set"
    ok(run(*build_args("build-pairs", synthetic["expression"], synthetic["interactions"], out)))
    return out


@pytest.fixture(scope="module")
def model(pairset, tmp_path_factory) -> Path:
    """A model trained with the default architecture (1 epoch)."""
    out = tmp_path_factory.mktemp("model") / "synthetic_model"
    ok(run("train", "--pairs", pairset, "--output", out, "--epochs", "1"))
    return out


def _weights(model_dir: Path) -> bytes:
    return (model_dir / "weights.safetensors").read_bytes()


# -- happy paths -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("negatives", "split"),
    [
        ("random", "random"),
        ("tf-matched", "random"),
        ("random", "tf-holdout"),
        ("tf-matched", "tf-holdout"),
    ],
)
def test_build_pairs_train_evaluate(synthetic, tmp_path, negatives, split) -> None:
    pairs_dir, model_dir = tmp_path / "synthetic_pairs", tmp_path / "synthetic_model"
    metrics_json = tmp_path / "synthetic_metrics.json"
    args = build_args("build-pairs", synthetic["expression"], synthetic["interactions"], pairs_dir)
    out = ok(run(*args, "--negatives", negatives, "--split", split, "--seed", "3"))
    assert f"negatives: {negatives}; split: {split}" in out
    assert "80 known pairs -> 80 positives from 10 regulators" in out
    assert f"Pair set written to {pairs_dir}" in out
    assert {p.name for p in pairs_dir.iterdir()} == {
        "pairs.tsv",
        "expression.safetensors",
        "pairset.json",
    }
    meta = json.loads((pairs_dir / "pairset.json").read_text())
    assert (meta["negatives"], meta["split"], meta["seed"]) == (negatives, split, 3)
    table = pd.read_csv(pairs_dir / "pairs.tsv", sep="\t")
    assert set(table["kind"]) == {"positive", f"negative-{negatives}"}
    if split == "tf-holdout":  # whole regulators in one split
        assert (table.groupby("tf")["split"].nunique() == 1).all()

    out = ok(run("train", "--pairs", pairs_dir, "--output", model_dir, "--epochs", "2"))
    assert "Held-out test split" in out and "AUROC" in out
    assert f"Model written to {model_dir}" in out
    assert {p.name for p in model_dir.iterdir()} == {
        "model.json",
        "weights.safetensors",
        "expression.safetensors",
        "pairs.safetensors",
    }
    trained = json.loads((model_dir / "model.json").read_text())
    assert trained["data"]["negatives"] == negatives and trained["data"]["split"] == split
    assert len(trained["history"]) == 2

    out = ok(run("evaluate", "--model", model_dir, "--pairs", pairs_dir, "-o", metrics_json))
    assert f"Metrics written to {metrics_json}" in out
    for label in (
        "AUROC within targets",
        "within TFs",
        "pooled AUPRC",
        "Pearson r",
        "TF-only control",
        "target-only control",
        "target-frequency control",
        "model minus best control",
        "accuracy",
        "at probability 0.5",
    ):
        assert label in " ".join(out.split()), label
    metrics = json.loads(metrics_json.read_text())
    assert set(metrics["methods"]) == {
        "model",
        "pearson",
        "tf_only",
        "target_only",
        "target_frequency",
    }
    assert metrics["versus_best_control"]["pooled"]["low"] is not None
    assert METRIC_KEYS <= set(metrics)
    assert set(metrics["confusion"]) == {"tp", "fp", "fn", "tn"}
    assert metrics["split"] == "test"
    test = table[table["split"] == "test"]
    assert metrics["n"] == len(test) == sum(metrics["confusion"].values())
    assert metrics["n_positive"] == int(test["label"].sum())
    assert 0 <= metrics["accuracy"] <= 1 and metrics["loss"] > 0
    # The saved model scores the test split exactly as the model did when it was trained.
    assert metrics["auroc"] == pytest.approx(trained["metrics"]["test"]["auroc"])
    assert metrics["loss"] == pytest.approx(trained["metrics"]["test"]["loss"], rel=1e-5)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("split", ["train", "validation"])
def test_evaluate_other_splits(model, pairset, split, tmp_path) -> None:
    output = tmp_path / "synthetic_metrics.json"
    out = ok(run("evaluate", "-m", model, "-p", pairset, "--split", split, "-o", output))
    assert f"{split} split of" in out  # the table title (wrapped to the table's width)
    metrics = json.loads(output.read_text())
    table = pd.read_csv(pairset / "pairs.tsv", sep="\t")
    assert metrics["split"] == split
    assert metrics["n"] == int((table["split"] == split).sum())


def test_train_directly_from_expression_and_interactions(synthetic, tmp_path) -> None:
    out_dir = tmp_path / "synthetic_model"
    args = build_args("train", synthetic["expression"], synthetic["interactions"], out_dir)
    ok(run(*args, "--negatives", "tf-matched", "--split", "tf-holdout"))
    meta = json.loads((out_dir / "model.json").read_text())
    assert meta["data"]["negatives"] == "tf-matched"
    assert meta["data"]["split"] == "tf-holdout"
    assert meta["data"]["expression"]["source"] == str(synthetic["expression"])
    assert meta["architecture"]["n_samples"] == N_SAMPLES
    assert meta["samples"] == [f"synthetic_sample_{j}" for j in range(N_SAMPLES)]
    assert METRIC_KEYS <= set(meta["metrics"]["test"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic_model"]


def test_default_architecture_is_the_published_one(model) -> None:
    meta = json.loads((model / "model.json").read_text())
    assert meta["architecture"] == {
        "n_samples": N_SAMPLES,
        "filters": [4, 8],
        "units": 8,
        "batch_norm": [False, True],
        "dropout": 0.01,
        "kernel_width": 5,
        "kernel_height": 2,
    }


def test_train_options_are_saved_in_model_json(pairset, tmp_path) -> None:
    out_dir = tmp_path / "synthetic_model"
    options = ["--filters", "8,16", "--units", "4", "--no-batch-norm2", "--batch-norm1"]
    options += ["--dropout", "0", "--kernel-width", "3", "--batch-size", "32"]
    options += ["--learning-rate", "0.01", "--epochs", "2", "--seed", "5"]
    ok(run("train", "--pairs", pairset, "--output", out_dir, *options))
    meta = json.loads((out_dir / "model.json").read_text())
    assert meta["architecture"] == {
        "n_samples": N_SAMPLES,
        "filters": [8, 16],
        "units": 4,
        "batch_norm": [True, False],
        "dropout": 0.0,
        "kernel_width": 3,
        "kernel_height": 2,
    }
    training = meta["training"]
    assert (training["epochs"], training["batch_size"], training["seed"]) == (2, 32, 5)
    assert training["learning_rate"] == pytest.approx(0.01)
    assert len(meta["history"]) == 2
    # ...and the saved model loads back with that architecture.
    ok(run("evaluate", "--model", out_dir, "--pairs", pairset))


def test_same_seed_gives_identical_weights(pairset, tmp_path) -> None:
    def train(name: str, seed: int) -> bytes:
        out_dir = tmp_path / name
        ok(run("train", "-p", pairset, "-o", out_dir, "--epochs", "2", "--seed", seed))
        return _weights(out_dir)

    first = train("synthetic_seed7_a", 7)
    assert train("synthetic_seed7_b", 7) == first
    assert train("synthetic_seed8", 8) != first


def test_same_seed_gives_identical_pair_sets(synthetic, tmp_path) -> None:
    def build(name: str, seed: int) -> tuple[bytes, bytes]:
        out_dir = tmp_path / name
        args = build_args(
            "build-pairs", synthetic["expression"], synthetic["interactions"], out_dir
        )
        ok(run(*args, "--seed", seed))
        return (
            (out_dir / "pairs.tsv").read_bytes(),
            (out_dir / "expression.safetensors").read_bytes(),
        )

    first = build("synthetic_seed1_a", 1)
    assert build("synthetic_seed1_b", 1) == first
    assert build("synthetic_seed2", 2)[0] != first[0]


def test_datasets_lists_bundled_names_unbroken_at_80_columns() -> None:
    out = ok(run("datasets", columns=80))
    names = re.findall(r"^│ (\S+)", out, flags=re.MULTILINE)
    for expected in ("nitrogen-expression", "atregnet", "nitrogen-edges", "ath1-map"):
        assert expected in names
    assert set(names) >= {ds.name for ds in list_datasets()}


def test_version_and_help() -> None:
    assert ok(run("--version")).strip() == f"tfcnn {__version__}"
    out = ok(run("--help"))
    for command in COMMANDS:
        assert command in out
    out = ok(run("train", "--help"))
    for option in ("--pairs", "--expression", "--filters", "--batch-norm1", "--seed", "--force"):
        assert option in out


def test_no_arguments_shows_help() -> None:
    result = run()
    assert "Usage" in plain(result.output)
    assert result.exit_code in (0, 2)  # click >= 8.2 exits 2 for no_args_is_help


def test_console_script_help_in_a_subprocess() -> None:
    script = Path(sys.executable).parent / "tfcnn"
    assert script.exists(), f"console script {script} not installed"
    done = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for command in COMMANDS:
        assert command in plain(done.stdout)


@pytest.mark.parametrize("args", [["--version"], ["predict", "--model", "no-such-model"]])
def test_console_script_freezes_gc_before_shutdown(args: list[str]) -> None:
    """The entry point freezes the collector when a command ends, also on an error, so
    the interpreter's shutdown skips a collection over every imported object."""
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen objects:', gc.get_freeze_count()))\n"
        "sys.argv = ['tfcnn', *sys.argv[1:]]\n"
        "from tfcnn.apps.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == (0 if args == ["--version"] else 2), done.stderr
    frozen = re.search(r"frozen objects: (\d+)", done.stdout)
    assert frozen and int(frozen.group(1)) > 10_000, done.stdout


# -- bad input: exit 2, a message naming the problem, nothing written ----------------------
@pytest.mark.parametrize("cmd", ["build-pairs", "train"])
def test_missing_expression_file(synthetic, tmp_path, cmd) -> None:
    missing = tmp_path / "synthetic_missing.tsv"
    output = tmp_path / "synthetic_out"
    user_error(run(*build_args(cmd, missing, synthetic["interactions"], output)), str(missing))
    assert_nothing_written(output)


def test_missing_interactions_file(synthetic, tmp_path) -> None:
    missing = tmp_path / "synthetic_missing_pairs.tsv"
    output = tmp_path / "synthetic_out"
    args = build_args("build-pairs", synthetic["expression"], missing, output)
    user_error(run(*args), str(missing), "not found")
    assert_nothing_written(output)


@pytest.mark.parametrize("name", ["synthetic[raw].tsv", "synthetic[/raw].tsv", "[bold]x.tsv"])
def test_error_message_prints_paths_verbatim(synthetic, tmp_path, name) -> None:
    """Brackets in a path are text, not console markup (was: mangled name or a crash)."""
    missing = tmp_path / name
    output = tmp_path / "synthetic_out"
    args = build_args("build-pairs", missing, synthetic["interactions"], output)
    user_error(run(*args), f"{missing}: file not found")
    assert_nothing_written(output)


@pytest.mark.parametrize("cmd", ["build-pairs", "train"])
def test_duplicated_gene_id(synthetic, tmp_path, cmd) -> None:
    def duplicate(lines: list[str]) -> None:
        # line 5 (lines[4]) is synthetic_tf_03; give line 14 the same ID
        lines[13] = "synthetic_tf_03\t" + lines[13].split("\t", 1)[1]

    bad = bad_copy(synthetic["expression"], tmp_path / "synthetic_dup.tsv", duplicate)
    output = tmp_path / "synthetic_out"
    user_error(
        run(*build_args(cmd, bad, synthetic["interactions"], output)),
        str(bad),
        "'synthetic_tf_03'",
        "line 5 and line 14",
    )
    assert_nothing_written(output)


@pytest.mark.parametrize("cmd", ["build-pairs", "train"])
def test_non_numeric_cell(synthetic, tmp_path, cmd) -> None:
    def spoil(lines: list[str]) -> None:
        cells = lines[6].split("\t")  # line 7
        cells[4] = "abc"  # the 4th sample column
        lines[6] = "\t".join(cells)

    bad = bad_copy(synthetic["expression"], tmp_path / "synthetic_bad_cell.tsv", spoil)
    output = tmp_path / "synthetic_out"
    user_error(
        run(*build_args(cmd, bad, synthetic["interactions"], output)),
        str(bad),
        "line 7",
        "'synthetic_sample_3'",
        "'abc'",
    )
    assert_nothing_written(output)


@pytest.mark.parametrize("cmd", ["build-pairs", "train"])
@pytest.mark.parametrize(("option", "value"), [("--negatives", "tf_matched"), ("--split", "by-tf")])
def test_unknown_strategy(synthetic, tmp_path, cmd, option, value) -> None:
    output = tmp_path / "synthetic_out"
    args = build_args(cmd, synthetic["expression"], synthetic["interactions"], output)
    user_error(run(*args, option, value), option, repr(value))
    assert_nothing_written(output)


def test_evaluate_unknown_split(model, pairset, tmp_path) -> None:
    output = tmp_path / "synthetic_metrics.json"
    user_error(
        run("evaluate", "-m", model, "-p", pairset, "--split", "holdout", "-o", output),
        "'holdout'",
        "train, validation, test",
    )
    assert_nothing_written(output)


@pytest.mark.parametrize("value", ["4", "4,8,16", "a,b", "4;8", "0,8", "4,-1", ""])
def test_malformed_filters(pairset, tmp_path, value) -> None:
    output = tmp_path / "synthetic_out"
    user_error(
        run("train", "-p", pairset, "-o", output, "--epochs", "1", "--filters", value),
        "--filters",
        repr(value),
    )
    assert_nothing_written(output)


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--dropout", "1", "--dropout"),
        ("--dropout", "-0.1", "--dropout"),
        ("--epochs", "0", "--epochs"),
        ("--units", "0", "--units"),
        ("--kernel-width", "0", "--kernel-width"),
        ("--batch-size", "0", "--batch-size"),
        ("--learning-rate", "0", "--learning-rate"),
        ("--learning-rate", "nan", "--learning-rate"),
    ],
)
def test_out_of_range_train_options(pairset, tmp_path, option, value, named) -> None:
    output = tmp_path / "synthetic_out"
    args = ["train", "-p", pairset, "-o", output]
    user_error(
        run(*args, *(["--epochs", "1"] if option != "--epochs" else []), option, value), named
    )
    assert_nothing_written(output)


def test_options_are_checked_before_reading_the_data(tmp_path) -> None:
    """A bad option is reported even when the input files would also fail."""
    output = tmp_path / "synthetic_out"
    missing = tmp_path / "synthetic_missing.tsv"
    args = build_args("train", missing, missing, output)
    user_error(run(*args, "--filters", "4"), "--filters")


def test_non_integer_option_is_a_usage_error(pairset, tmp_path) -> None:
    output = tmp_path / "synthetic_out"
    result = run("train", "-p", pairset, "-o", output, "--epochs", "two")
    assert result.exit_code == 2
    assert "--epochs" in plain(result.output) and "Traceback" not in plain(result.output)
    assert_nothing_written(output)


def test_missing_required_option_is_a_usage_error(synthetic) -> None:
    result = run("build-pairs", "-x", synthetic["expression"], "-i", synthetic["interactions"])
    assert result.exit_code == 2
    assert "--output" in plain(result.output)


def test_build_pairs_refuses_existing_output_then_force_replaces(synthetic, tmp_path) -> None:
    output = tmp_path / "synthetic_pairs_set"
    output.mkdir()
    (output / "synthetic_marker.txt").write_text("keep me")
    args = build_args("build-pairs", synthetic["expression"], synthetic["interactions"], output)
    user_error(run(*args), str(output), "--force")
    assert (output / "synthetic_marker.txt").read_text() == "keep me"
    assert leftovers(tmp_path) == []
    ok(run(*args, "--force"))
    assert sorted(p.name for p in output.iterdir()) == [
        "expression.safetensors",
        "pairs.tsv",
        "pairset.json",
    ]
    assert leftovers(tmp_path) == []


def test_train_refuses_existing_output_then_force_replaces(pairset, tmp_path) -> None:
    output = tmp_path / "synthetic_model"
    output.mkdir()
    (output / "synthetic_marker.txt").write_text("keep me")
    args = ["train", "-p", pairset, "-o", output, "--epochs", "1"]
    err = user_error(run(*args), str(output), "--force")
    assert "training" not in err  # refused before training
    assert (output / "synthetic_marker.txt").read_text() == "keep me"
    ok(run(*args, "--force"))
    assert sorted(p.name for p in output.iterdir()) == [
        "expression.safetensors",
        "model.json",
        "pairs.safetensors",
        "weights.safetensors",
    ]
    assert leftovers(tmp_path) == []


def test_evaluate_refuses_existing_output_then_force_replaces(model, pairset, tmp_path) -> None:
    output = tmp_path / "synthetic_metrics.json"
    output.write_text("synthetic old metrics")
    args = ["evaluate", "-m", model, "-p", pairset, "-o", output]
    user_error(run(*args), str(output), "--force")
    assert output.read_text() == "synthetic old metrics"
    ok(run(*args, "--force"))
    assert METRIC_KEYS <= set(json.loads(output.read_text()))
    assert leftovers(tmp_path) == []


def test_evaluate_output_under_a_regular_file(model, pairset, tmp_path) -> None:
    blocker = tmp_path / "synthetic_file"
    blocker.write_text("not a folder")
    output = blocker / "metrics.json"
    user_error(run("evaluate", "-m", model, "-p", pairset, "-o", output), str(blocker))
    assert blocker.read_text() == "not a folder"
    assert leftovers(tmp_path) == []


def test_evaluate_model_with_other_number_of_samples(model, synthetic, tmp_path) -> None:
    pairs10 = tmp_path / "synthetic_pairs_10"
    ok(
        run(
            *build_args(
                "build-pairs", synthetic["expression10"], synthetic["interactions10"], pairs10
            )
        )
    )
    output = tmp_path / "synthetic_metrics.json"
    user_error(
        run("evaluate", "-m", model, "-p", pairs10, "-o", output),
        f"expects {N_SAMPLES} samples",
        "has 10",
    )
    assert_nothing_written(output)


def test_evaluate_model_with_other_sample_names(model, synthetic, tmp_path) -> None:
    renamed = tmp_path / "synthetic_pairs_renamed"
    ok(run(*build_args("build-pairs", synthetic["renamed"], synthetic["interactions"], renamed)))
    user_error(
        run("evaluate", "-m", model, "-p", renamed),
        "sample 1 differs",
        "'synthetic_sample_0'",
        "'synthetic_other_sample_0'",
    )


class _Tripwire:
    """Unpickling this creates a file: proves a pickle is never loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_model_given_as_a_pickle_file_is_refused_unopened(pairset, tmp_path) -> None:
    marker = tmp_path / "synthetic_unpickled_marker"
    pkl = tmp_path / "synthetic_model.pkl"
    pkl.write_bytes(pickle.dumps(_Tripwire(marker)))
    output = tmp_path / "synthetic_metrics.json"
    user_error(
        run("evaluate", "--model", pkl, "--pairs", pairset, "-o", output),
        str(pkl),
        "not a tfcnn model",
    )
    assert not marker.exists()
    assert_nothing_written(output)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "has no model.json"),
        (lambda p: None, "does not exist"),
    ],
    ids=["empty-dir", "missing"],
)
def test_model_not_a_model_directory(pairset, tmp_path, make, message) -> None:
    model_dir = tmp_path / "synthetic_model"
    make(model_dir)
    output = tmp_path / "synthetic_metrics.json"
    user_error(
        run("evaluate", "-m", model_dir, "-p", pairset, "-o", output), str(model_dir), message
    )
    assert_nothing_written(output)


def test_model_with_invalid_model_json(model, pairset, tmp_path) -> None:
    broken = tmp_path / "synthetic_model"
    broken.mkdir()
    (broken / "weights.safetensors").write_bytes(_weights(model))
    (broken / "model.json").write_text("{not json")
    user_error(run("evaluate", "-m", broken, "-p", pairset), "model.json", "not valid JSON")


@pytest.mark.parametrize("cmd", ["train", "evaluate"])
def test_pairs_not_a_directory(model, tmp_path, cmd) -> None:
    not_dir = tmp_path / "synthetic_pairs.tsv"
    not_dir.write_text("tf\ttarget\n")
    output = tmp_path / ("synthetic_out" if cmd == "train" else "synthetic_metrics.json")
    if cmd == "train":
        args = ["train", "--pairs", not_dir, "--output", output, "--epochs", "1"]
    else:
        args = ["evaluate", "--model", model, "--pairs", not_dir, "--output", output]
    user_error(run(*args), str(not_dir), "not a pair set", "build-pairs")
    assert_nothing_written(output)


def test_pairs_directory_missing_a_file(pairset, model, tmp_path) -> None:
    partial = tmp_path / "synthetic_partial_pairs"
    partial.mkdir()
    (partial / "pairs.tsv").write_bytes((pairset / "pairs.tsv").read_bytes())
    user_error(run("evaluate", "-m", model, "-p", partial), str(partial), "expression.safetensors")


@pytest.mark.parametrize(
    "given",
    [[], ["--expression", "EXPR"], ["--interactions", "PAIRS"]],
    ids=["nothing", "expression-only", "interactions-only"],
)
def test_train_needs_pairs_or_expression_and_interactions(synthetic, tmp_path, given) -> None:
    given = [
        {"EXPR": synthetic["expression"], "PAIRS": synthetic["interactions"]}.get(a, a)
        for a in given
    ]
    output = tmp_path / "synthetic_out"
    user_error(run("train", "--output", output, "--epochs", "1", *given), "--pairs", "--expression")
    assert_nothing_written(output)


def test_train_refuses_pairs_and_expression_together(synthetic, pairset, tmp_path) -> None:
    output = tmp_path / "synthetic_out"
    args = build_args("train", synthetic["expression"], synthetic["interactions"], output)
    user_error(run(*args, "--pairs", pairset), "not both")
    assert_nothing_written(output)


def test_demo_rejects_zero_epochs(tmp_path) -> None:
    output = tmp_path / "synthetic_demo"
    user_error(run("demo", "--epochs", "0", "--output", output), "--epochs")
    assert_nothing_written(output)


@pytest.mark.parametrize(
    ("file", "content", "named"),
    [
        pytest.param("pairset.json", "{broken", "pairset.json", id="json-syntax"),
        pytest.param("pairset.json", '{"format": "other"}', "pairset.json", id="json-format"),
        pytest.param(
            "expression.safetensors", "synthetic garbage", "expression.safetensors", id="examples"
        ),
        pytest.param(
            "pairset.json",
            "[]",
            "pairset.json",
            id="json-not-an-object",
        ),
        pytest.param(
            "pairset.json",
            '{"format": "tfcnn-pairs", "format_version": "1"}',
            "pairset.json",
            id="json-version-not-int",
        ),
        pytest.param(
            "pairs.tsv",
            "",
            "pairs.tsv",
            id="empty-table",
        ),
    ],
)
def test_corrupt_pair_set(pairset, model, tmp_path, file, content, named) -> None:
    corrupt = tmp_path / "synthetic_corrupt_pairs"
    corrupt.mkdir()
    for part in pairset.iterdir():
        (corrupt / part.name).write_bytes(part.read_bytes())
    (corrupt / file).write_text(content)
    output = tmp_path / "synthetic_metrics.json"
    user_error(run("evaluate", "-m", model, "-p", corrupt, "-o", output), named)
    assert_nothing_written(output)


def test_pair_set_with_non_integer_label(pairset, model, tmp_path) -> None:
    corrupt = tmp_path / "synthetic_corrupt_pairs"
    corrupt.mkdir()
    for part in pairset.iterdir():
        (corrupt / part.name).write_bytes(part.read_bytes())
    table = pd.read_csv(pairset / "pairs.tsv", sep="\t")
    table["label"] = table["label"].map({1: "yes", 0: "no"})
    table.to_csv(corrupt / "pairs.tsv", sep="\t", index=False)
    user_error(run("evaluate", "-m", model, "-p", corrupt), "pairs.tsv", "label")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--filters", "4,1000000000"], "--filters must be whole numbers from 1 to 1,024"),
        (["--units", "100000"], "--units must be a whole number from 1 to 4,096"),
        (["--kernel-width", "5000"], "--kernel-width must be a whole number from 1 to 1,024"),
        (["--epochs", "10000000"], "at most 100,000"),
        (["--seed", "-5"], "--seed"),
        (["--seed", str(2**64)], "--seed"),
    ],
)
def test_huge_or_negative_settings_are_refused_before_any_allocation(
    pairset, tmp_path, options, named
) -> None:
    """Issue 12: --filters 4,1000000000 allocated 21 GB before anything refused."""
    import resource

    output = tmp_path / "synthetic_out"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run("train", "-p", pairset, "-o", output, *options)
    assert result.exit_code == 2, result.output
    assert named in plain(result.output)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB
    assert_nothing_written(output)
