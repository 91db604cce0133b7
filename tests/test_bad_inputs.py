"""The bad-input catalogue (docs/bad_inputs.md): every kind of bad file through every CLI
command that reads it, plus interrupted training and an interrupted tuning scan.

Every file here is synthetic and written by these tests (tests/synthetic.py): the
profiles are planted, and the genes are only *named* after real AGI loci of the bundled
ATH1 map so that ID namespaces (AGI codes vs probesets) can be exercised.

The contract checked for each (input kind, command) case:
- exit code 2 and exactly one "error: ..." message, no traceback;
- the message names the bad file (and the line / ID / column where there is one) and
  the fragment the catalogue lists;
- no output (file, folder, temporary sibling, scan work folder) is left behind;
- with --force over an existing output, the existing output is left untouched.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
import typer
from click.testing import CliRunner, Result
from safetensors.numpy import save_file as save_numpy

from tests.synthetic import ATREGNET_HEADER, planted_dataset, write_pairs, write_tsv
from tfcnn.apps import console as cli_console
from tfcnn.apps.cli import app
from tfcnn.errors import ModelFormatError
from tfcnn.io.datasets import resolve_path
from tfcnn.io.idmap import read_id_map
from tfcnn.io.interactions import from_pairs
from tfcnn.model.estimator import PairCNN

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
N_SAMPLES = 8
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# -- running the CLI -----------------------------------------------------------------------
def plain(text: str) -> str:
    return _ANSI.sub("", text)


@functools.cache
def _command() -> click.Command:
    # Built once: typer rebuilds the whole command tree on every CliRunner call (~0.1 s).
    return typer.main.get_command(app)


def run(*args: object, home: Path) -> Result:
    """Invoke the app in-process, consoles 200 wide, the model registry under ``home``."""
    consoles = (cli_console.console, cli_console.err_console)
    saved = [(c._width, c._height) for c in consoles]
    for c in consoles:
        c._width, c._height = 200, 50
    try:
        env = {"COLUMNS": "200", "LINES": "50", "TFCNN_HOME": str(home)}
        return CliRunner().invoke(_command(), [str(a) for a in args], env=env)
    finally:
        for c, (width, height) in zip(consoles, saved, strict=True):
            c._width, c._height = width, height


def succeeded(result: Result) -> str:
    out = plain(result.output)
    assert result.exit_code == 0, out + repr(result.exception)
    return out


def refused(result: Result, *fragments: str) -> str:
    """Exit 2, one 'error:' message holding every fragment, no traceback; the message."""
    out = plain(result.output)
    assert result.exit_code == 2, f"exit {result.exit_code}: {out}{result.exception!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in out
    err = plain(result.stderr)
    assert err.count("error: ") == 1, err
    message = " ".join(err[err.index("error: ") :].split())
    for fragment in fragments:
        assert " ".join(fragment.split()) in message, f"{fragment!r} not in {message!r}"
    return message


def snapshot(path: Path) -> object:
    """The bytes of a file, or {relative path: bytes} of a folder; None when absent."""
    if path.is_dir():
        return {
            str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
        }
    return path.read_bytes() if path.exists() else None


# -- the synthetic world: one matrix, its pairs, a pair set and a model -----------------------
@dataclass(frozen=True)
class World:
    dir: Path
    expression: Path  # genes named after AGI loci, N_SAMPLES samples
    expression_probesets: Path  # the same matrix keyed by ATH1 probesets
    pairs: Path
    pairs_probesets: Path
    pairset: Path
    pairset_renamed: Path  # same genes, other sample names
    pairset_fewer: Path  # same genes, 6 of the samples
    model: Path
    genes: tuple[str, ...]
    samples: tuple[str, ...]
    tf: str
    target: str
    outside_probesets: tuple[str, ...]  # probesets of loci the model does not have
    home: Path  # TFCNN_HOME for every run (an empty model registry)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    d = tmp_path_factory.mktemp("synthetic_world")
    expr, inter = planted_dataset(
        n_tfs=6, targets_per_tf=8, n_background=30, n_samples=N_SAMPLES, seed=3
    )
    id_map = read_id_map(resolve_path("ath1-map"))
    loci = sorted(id_map.agi_to_probeset)
    mapping = dict(zip(expr.genes, loci[: expr.n_genes], strict=True))
    agi = expr.rename(mapping)
    agi_pairs = from_pairs(
        sorted((mapping[t], mapping[g]) for t, g in inter.as_set()), source="synthetic"
    )
    write_tsv(agi, d / "synthetic_expression.tsv")
    write_pairs(agi_pairs, d / "synthetic_pairs.tsv")
    to_probeset = {g: id_map.agi_to_probeset[g] for g in agi.genes}
    write_tsv(agi.rename(to_probeset), d / "synthetic_expression_probesets.tsv")
    write_pairs(
        from_pairs(
            sorted((to_probeset[t], to_probeset[g]) for t, g in agi_pairs.as_set()),
            source="synthetic",
        ),
        d / "synthetic_pairs_probesets.tsv",
    )
    home = d / "synthetic_home"
    pairset, model = d / "synthetic_pairset", d / "synthetic_model"
    succeeded(
        run(
            "build-pairs",
            *("-x", d / "synthetic_expression.tsv", "-i", d / "synthetic_pairs.tsv"),
            *("-o", pairset),
            home=home,
        )
    )
    succeeded(
        run(
            "train",
            *("-p", pairset, "-o", model, "--epochs", "1", "--filters", "2,4", "--units", "4"),
            home=home,
        )
    )
    frame = pd.read_csv(d / "synthetic_expression.tsv", sep="\t", index_col=0)
    renamed = frame.set_axis([f"synthetic_other_{j}" for j in range(N_SAMPLES)], axis=1)
    renamed.to_csv(d / "synthetic_expression_renamed.tsv", sep="\t")
    frame.iloc[:, :6].to_csv(d / "synthetic_expression_6_samples.tsv", sep="\t")
    for name, matrix in (
        ("renamed", "synthetic_expression_renamed.tsv"),
        ("fewer", "synthetic_expression_6_samples.tsv"),
    ):
        succeeded(
            run(
                *("build-pairs", "-x", d / matrix, "-i", d / "synthetic_pairs.tsv"),
                *("-o", d / f"synthetic_pairset_{name}"),
                home=home,
            )
        )
    tf, target = sorted(agi_pairs.as_set())[0]
    outside = tuple(id_map.agi_to_probeset[g] for g in loci[expr.n_genes : expr.n_genes + 3])
    return World(
        dir=d,
        expression=d / "synthetic_expression.tsv",
        expression_probesets=d / "synthetic_expression_probesets.tsv",
        pairs=d / "synthetic_pairs.tsv",
        pairs_probesets=d / "synthetic_pairs_probesets.tsv",
        pairset=pairset,
        pairset_renamed=d / "synthetic_pairset_renamed",
        pairset_fewer=d / "synthetic_pairset_fewer",
        model=model,
        genes=agi.genes,
        samples=agi.samples,
        tf=tf,
        target=target,
        outside_probesets=outside,
        home=home,
    )


# -- bad file contents ---------------------------------------------------------------------
def xlsx_bytes() -> bytes:
    """A real .xlsx workbook (what a spreadsheet program saves)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["gene", "synthetic_sample_0", "synthetic_sample_1", "synthetic_sample_2"])
    sheet.append(["AT1G01010", 1.0, 2.0, 3.0])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def binary_bytes() -> bytes:
    data = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    assert b"\x00" in data
    return data


def edit_lines(text: str, edit: Callable[[list[list[str]]], None], sep: str = "\t") -> str:
    """``text`` (a TSV) with ``edit`` applied to its rows of fields (row 0 is the header)."""
    rows = [line.split("\t") for line in text.splitlines()]
    edit(rows)
    return "\n".join(sep.join(r) for r in rows) + "\n"


def set_cell(row: int, col: int, value: str) -> Callable[[list[list[str]]], None]:
    def edit(rows: list[list[str]]) -> None:
        rows[row][col] = value

    return edit


@dataclass(frozen=True)
class Kind:
    """One kind of bad input: the file to write, extra options, what the message says."""

    name: str  # file name (always synthetic_...)
    content: Callable[[World], bytes | None]  # None: the file is not created
    fragments: tuple[str, ...]
    args: tuple[str, ...] = ()


def _expr(w: World) -> str:
    return w.expression.read_text()


def _constant_all(w: World) -> bytes:
    def edit(rows: list[list[str]]) -> None:
        for r in rows[1:]:
            r[1:] = ["5.0"] * (len(r) - 1)

    return edit_lines(_expr(w), edit).encode()


EXPRESSION_KINDS: dict[str, Kind] = {
    "empty": Kind("synthetic_empty.tsv", lambda w: b"", ("is empty",)),
    "header-only": Kind(
        "synthetic_header_only.tsv",
        lambda w: _expr(w).splitlines(keepends=True)[0].encode(),
        ("has a header but no data lines",),
    ),
    "semicolons-in-csv": Kind(
        "synthetic_semicolons.csv",
        lambda w: _expr(w).replace("\t", ";").encode(),
        ("semicolon-separated",),
    ),
    "commas-in-tsv": Kind(
        "synthetic_commas.tsv",
        lambda w: _expr(w).replace("\t", ",").encode(),
        ("comma-separated", "save it as .csv"),
    ),
    "xlsx-renamed-csv": Kind(
        "synthetic_workbook.csv",
        lambda w: xlsx_bytes(),
        ("an Excel workbook (.xlsx) or another zip archive", "export it as CSV or TSV"),
    ),
    "random-binary": Kind(
        "synthetic_binary.tsv", lambda w: binary_bytes(), ("is binary", "export it as CSV")
    ),
    "utf16-without-bom": Kind(
        "synthetic_utf16.tsv",
        lambda w: _expr(w).encode("utf-16-le"),
        ("UTF-16 text without a byte-order mark", "UTF-8 encoded"),
    ),
    "duplicate-id": Kind(
        "synthetic_duplicate.tsv",
        lambda w: edit_lines(_expr(w), lambda rows: rows[3].__setitem__(0, rows[2][0])).encode(),
        ("appears more than once (line 3 and line 4)",),
    ),
    "empty-id": Kind(
        "synthetic_empty_id.tsv",
        lambda w: edit_lines(_expr(w), set_cell(3, 0, "")).encode(),
        ("line 4 has an empty gene ID",),
    ),
    "nan-cell": Kind(
        "synthetic_nan.tsv",
        lambda w: edit_lines(_expr(w), set_cell(3, 2, "NaN")).encode(),
        ("line 4, column 'synthetic_sample_1': missing value 'NaN'",),
    ),
    "empty-cell": Kind(
        "synthetic_empty_cell.tsv",
        lambda w: edit_lines(_expr(w), set_cell(3, 2, "")).encode(),
        ("line 4, column 'synthetic_sample_1': empty cell",),
    ),
    "inf-cell": Kind(
        "synthetic_inf.tsv",
        lambda w: edit_lines(_expr(w), set_cell(3, 2, "inf")).encode(),
        ("line 4, column 'synthetic_sample_1': value 'inf' is infinite",),
    ),
    "text-cell": Kind(
        "synthetic_text.tsv",
        lambda w: edit_lines(_expr(w), set_cell(3, 2, "high")).encode(),
        ("line 4, column 'synthetic_sample_1': value 'high' is not a number",),
    ),
    "decimal-comma": Kind(
        "synthetic_decimal_comma.tsv",
        lambda w: edit_lines(_expr(w), set_cell(3, 2, "8,25")).encode(),
        ("line 4", "'8,25' is not a number (use '.' as the decimal separator)"),
    ),
    "short-line": Kind(
        "synthetic_short_line.tsv",
        lambda w: edit_lines(_expr(w), lambda rows: rows.__setitem__(3, rows[3][:4])).encode(),
        ("line 4", "fewer fields than the header"),
    ),
    "negative-with-log2": Kind(
        "synthetic_negative.tsv",
        lambda w: edit_lines(_expr(w), set_cell(3, 2, "-1.5")).encode(),
        ("line 4, column 'synthetic_sample_1': value -1.5 is <= 0 and has no log2", "--log2"),
        args=("--log2",),
    ),
    "two-samples": Kind(
        "synthetic_two_samples.tsv",
        lambda w: edit_lines(
            _expr(w), lambda rows: rows.__setitem__(slice(None), [r[:3] for r in rows])
        ).encode(),
        ("need at least 3",),
    ),
    "all-constant": Kind(
        "synthetic_constant.tsv",
        _constant_all,
        ("gene profiles are constant across samples",),
    ),
    "not-gzip": Kind(
        "synthetic_plain.tsv.gz", lambda w: _expr(w).encode(), ("not a valid gzip file",)
    ),
    "corrupt-parquet": Kind(
        "synthetic_corrupt.parquet",
        lambda w: b"PAR1 synthetic junk",
        ("cannot read it as Parquet",),
    ),
    "unknown-extension": Kind(
        "synthetic_expression.xls", lambda w: _expr(w).encode(), ("unknown expression file type",)
    ),
    "missing-file": Kind("synthetic_missing.tsv", lambda w: None, ("file not found",)),
}


@dataclass(frozen=True)
class Command:
    """How one command takes the bad input; where it writes."""

    build: Callable[[World, Path, Path], list[object]]  # (world, bad file, output) -> args
    output: str  # output path under a fresh folder; a trailing '/' means a folder
    registry: bool = False  # the output folder is TFCNN_HOME (tfcnn models add)


def _study(flag: str) -> Callable[[World, Path, Path], list[object]]:
    def build(w: World, bad: Path, out: Path) -> list[object]:
        data = {"-x": w.expression, "-i": w.pairs}
        data[flag] = bad
        return [
            "study",
            *("-x", data["-x"], "-i", data["-i"], "-o", out),
            *("--no-tune", "--replicates", "2", "--epochs", "1", "--genie3-trees", "0"),
            *("--workers", "1"),
        ]

    return build


def _tune(flag: str) -> Callable[[World, Path, Path], list[object]]:
    def build(w: World, bad: Path, out: Path) -> list[object]:
        data = {"-x": w.expression, "-i": w.pairs}
        data[flag] = bad
        return [
            "tune",
            "grid",
            *("-x", data["-x"], "-i", data["-i"], "-o", out),
            *("--values", "2", "--epochs", "1", "--train-pairs", "10", "--workers", "1"),
        ]

    return build


EXPRESSION_COMMANDS: dict[str, Command] = {
    "build-pairs": Command(
        lambda w, bad, out: ["build-pairs", "-x", bad, "-i", w.pairs, "-o", out], "pairs/"
    ),
    "train": Command(
        lambda w, bad, out: ["train", "-x", bad, "-i", w.pairs, "-o", out, "--epochs", "1"],
        "model/",
    ),
    "predict": Command(
        lambda w, bad, out: ["predict", "-m", w.model, "-r", w.tf, "-x", bad, "-o", out],
        "predictions.csv",
    ),
    "scan": Command(
        lambda w, bad, out: ["scan", "-m", w.model, "-x", bad, "-o", out], "scan.parquet"
    ),
    "explain-pair": Command(
        lambda w, bad, out: [
            *("explain", "pair", "-m", w.model, "--tf", w.tf, "--target", w.target),
            *("-x", bad, "-o", out),
        ],
        "pair.png",
    ),
    "study": Command(_study("-x"), "study/"),
    "tune-grid": Command(_tune("-x"), "grid/"),
}


def write_bad(kind: Kind, w: World, folder: Path) -> Path:
    path = folder / kind.name
    content = kind.content(w)
    if content is not None:
        path.write_bytes(content)
    return path


def check_refused(w: World, command: Command, bad: Path, tmp_path: Path, fragments, args=()) -> str:
    """Run the case on a fresh output, then with --force over an existing one."""
    outdir = tmp_path / "synthetic_out"
    outdir.mkdir()
    home = outdir if command.registry else w.home
    output = outdir / command.output.rstrip("/")
    argv = [*command.build(w, bad, output), *args]
    message = refused(run(*argv, home=home), *fragments)
    assert not any(outdir.iterdir()), "output or temporary files left behind"
    # An existing output is not touched when the input is bad, even with --force.
    if command.output.endswith("/"):
        output.mkdir(parents=True)
        (output / "synthetic_existing.txt").write_text("synthetic existing output\n")
    else:
        output.write_text("synthetic existing output\n")
    before = snapshot(output)
    refused(run(*argv, "--force", home=home), *fragments)
    assert snapshot(output) == before, "an existing output was changed"
    assert sorted(os.listdir(output.parent)) == [output.name], "temporary files left behind"
    return message


@pytest.mark.parametrize("command", list(EXPRESSION_COMMANDS))
@pytest.mark.parametrize("kind", list(EXPRESSION_KINDS))
def test_bad_expression_file(world, tmp_path, kind, command) -> None:
    k = EXPRESSION_KINDS[kind]
    bad = write_bad(k, world, tmp_path)
    check_refused(
        world, EXPRESSION_COMMANDS[command], bad, tmp_path, (str(bad), *k.fragments), k.args
    )


# -- interaction files ---------------------------------------------------------------------


def atregnet(w: World, edit: Callable[[list[list[str]]], None] | None = None) -> bytes:
    """A synthetic AtRegNet-layout table of the world's pairs (confirmed, direct)."""
    pairs = pd.read_csv(w.pairs, sep="\t")
    rows = [ATREGNET_HEADER[:8]]  # up to Confirmation
    for tf, target in zip(pairs["tf"], pairs["target"], strict=True):
        rows.append(
            ["synthetic", tf, "synthetic", "synthetic", target, "No", "Direct", "Confirmed"]
        )
    if edit is not None:
        edit(rows)
    return ("\n".join("\t".join(r) for r in rows) + "\n").encode("latin-1")


def _insert_field(rows: list[list[str]], which: slice) -> None:
    for r in rows[which]:
        r.insert(1, "synthetic shifted")


def _pairs_text(w: World) -> str:
    return w.pairs.read_text()


INTERACTION_KINDS: dict[str, Kind] = {
    "empty": Kind("synthetic_empty.tsv", lambda w: b"", ("the file is empty",)),
    "header-only": Kind(
        "synthetic_header_only.tsv", lambda w: b"tf\ttarget\n", ("header but no TF -> target rows",)
    ),
    "semicolons-in-csv": Kind(
        "synthetic_semicolons.csv",
        lambda w: _pairs_text(w).replace("\t", ";").encode(),
        ("separated by semicolons", "save the table as TSV or CSV"),
    ),
    "xlsx-renamed-csv": Kind(
        "synthetic_workbook.csv",
        lambda w: xlsx_bytes(),
        ("an Excel workbook (.xlsx) or another zip archive",),
    ),
    "random-binary": Kind("synthetic_binary.tsv", lambda w: binary_bytes(), ("is binary",)),
    "unrecognised-header": Kind(
        "synthetic_header.tsv",
        lambda w: _pairs_text(w).replace("tf\ttarget", "from\tto", 1).encode(),
        ("line 1", "neither a header naming the TF column"),
    ),
    "unclosed-quote": Kind(
        "synthetic_quote.tsv",
        lambda w: edit_lines(
            _pairs_text(w), lambda rows: rows[2].__setitem__(0, '"' + rows[2][0])
        ).encode(),
        ("line 3", "not closed"),
    ),
    "short-row": Kind(
        "synthetic_short_row.tsv",
        lambda w: edit_lines(
            _pairs_text(w), lambda rows: rows.__setitem__(3, rows[3][:1])
        ).encode(),
        ("line 4: 1 field(s), expected at least 2",),
    ),
    "empty-target": Kind(
        "synthetic_empty_target.tsv",
        lambda w: edit_lines(_pairs_text(w), set_cell(3, 1, "NA")).encode(),
        ("line 4: empty target ID",),
    ),
    "probeset-ids-without-id-map": Kind(
        "synthetic_probeset_pairs.tsv",
        lambda w: w.pairs_probesets.read_bytes(),
        ("keyed by agi IDs", "use probeset IDs", "pass --id-map"),
    ),
    "no-pair-in-matrix": Kind(
        "synthetic_other_genes.tsv",
        lambda w: b"tf\ttarget\nAT5G67610\tAT5G67620\nAT5G67630\tAT5G67640\n",
        ("no known pair from", "has both genes in"),
    ),
    "atregnet-shifted-columns": Kind(
        "synthetic_atregnet_shifted.tsv",
        lambda w: atregnet(w, lambda rows: _insert_field(rows, slice(1, None))),
        ("no usable row with Confirmation 'confirmed'", "have more fields than the header"),
    ),
    "atregnet-row-cut-short": Kind(
        "synthetic_atregnet_short.tsv",
        lambda w: atregnet(w, lambda rows: rows.__setitem__(3, rows[3][:4])),
        ("line 4: 4 field(s) but the header has 8", "cut short or its columns are shifted"),
    ),
    "not-gzip": Kind(
        "synthetic_plain.tsv.gz", lambda w: _pairs_text(w).encode(), ("not a valid gzip file",)
    ),
    "missing-file": Kind("synthetic_missing.tsv", lambda w: None, ("file not found",)),
}

INTERACTION_COMMANDS: dict[str, Command] = {
    "build-pairs": Command(
        lambda w, bad, out: ["build-pairs", "-x", w.expression, "-i", bad, "-o", out], "pairs/"
    ),
    "build-pairs --exclude": Command(
        lambda w, bad, out: [
            *("build-pairs", "-x", w.expression, "-i", w.pairs, "--exclude", bad, "-o", out)
        ],
        "pairs/",
    ),
    "train": Command(
        lambda w, bad, out: ["train", "-x", w.expression, "-i", bad, "-o", out, "--epochs", "1"],
        "model/",
    ),
    "study": Command(_study("-i"), "study/"),
    "tune-grid": Command(_tune("-i"), "grid/"),
}
# Pairs outside the matrix cannot be drawn as negatives anyway: nothing to exclude, so
# that combination is accepted (test_exclude_pairs_outside_the_matrix_are_ignored).
ACCEPTED = {("no-pair-in-matrix", "build-pairs --exclude")}


@pytest.mark.parametrize(
    ("kind", "command"),
    [
        pytest.param(kind, command, id=f"{kind}-{command}")
        for kind in INTERACTION_KINDS
        for command in INTERACTION_COMMANDS
        if (kind, command) not in ACCEPTED
    ],
)
def test_bad_interactions_file(world, tmp_path, kind, command) -> None:
    k = INTERACTION_KINDS[kind]
    bad = write_bad(k, world, tmp_path)
    check_refused(world, INTERACTION_COMMANDS[command], bad, tmp_path, (str(bad), *k.fragments))


def test_exclude_pairs_outside_the_matrix_are_ignored(world, tmp_path) -> None:
    k = INTERACTION_KINDS["no-pair-in-matrix"]
    exclude = write_bad(k, world, tmp_path)
    args = ["build-pairs", "-x", world.expression, "-i", world.pairs, "-o"]
    succeeded(run(*args, tmp_path / "a", "--exclude", exclude, home=world.home))
    succeeded(run(*args, tmp_path / "b", home=world.home))
    tables = [(tmp_path / d / "pairs.tsv").read_bytes() for d in "ab"]
    assert tables[0] == tables[1]


# -- ID list files (predict --regulators / --targets, scan --tfs / --targets) ---------------
ID_LIST_COMMANDS: dict[str, Command] = {
    "predict --regulators": Command(
        lambda w, bad, out: ["predict", "-m", w.model, "-r", bad, "-o", out], "predictions.csv"
    ),
    "predict --targets": Command(
        lambda w, bad, out: ["predict", "-m", w.model, "-r", w.tf, "-t", bad, "-o", out],
        "predictions.csv",
    ),
    "scan --tfs": Command(
        lambda w, bad, out: ["scan", "-m", w.model, "--tfs", bad, "-o", out], "scan.parquet"
    ),
    "scan --targets": Command(
        lambda w, bad, out: ["scan", "-m", w.model, "--targets", bad, "-o", out], "scan.parquet"
    ),
}
_NO_ID = {
    "predict --regulators": ("--regulators file {bad} holds no IDs",),
    "predict --targets": ("--targets file {bad} holds no IDs", "or leave --targets out"),
    "scan --tfs": ("--tfs file {bad} holds no IDs",),
    "scan --targets": ("--targets file {bad} holds no IDs",),
}
ID_LIST_KINDS: dict[
    str, tuple[str, Callable[[World], bytes | None], dict[str, tuple[str, ...]]]
] = {
    "empty": ("synthetic_empty.txt", lambda w: b"", _NO_ID),
    "comments-only": ("synthetic_comments.txt", lambda w: b"# synthetic\n\n# none\n", _NO_ID),
    "xlsx-renamed-txt": (
        "synthetic_workbook.txt",
        lambda w: xlsx_bytes(),
        dict.fromkeys(
            ID_LIST_COMMANDS, ("{bad}", "an Excel workbook (.xlsx) or another zip archive")
        ),
    ),
    "random-binary": (
        "synthetic_binary.txt",
        lambda w: binary_bytes(),
        dict.fromkeys(ID_LIST_COMMANDS, ("{bad}", "is binary")),
    ),
    "no-id-matches": (
        "synthetic_unknown.txt",
        lambda w: b"synthetic_unknown_1\nsynthetic_unknown_2\n",
        {
            "predict --regulators": (
                "none of the 2 regulator ID(s) can be scored",
                "'synthetic_unknown_1': unknown",
            ),
            "predict --targets": ("none of the 2 target ID(s) can be scored",),
            "scan --tfs": (
                "{bad}: 2 of its 2 ID(s) are not genes",
                "'synthetic_unknown_1' (line 1)",
            ),
            "scan --targets": ("{bad}: 2 of its 2 ID(s)", "'synthetic_unknown_2' (line 2)"),
        },
    ),
    "latin1-bytes": (
        "synthetic_latin1.txt",
        lambda w: "synth\xe9tique_1\n".encode("latin-1"),
        {
            "predict --regulators": ("'synth\xe9tique_1': unknown",),
            "predict --targets": ("'synth\xe9tique_1': unknown",),
            "scan --tfs": ("{bad}", "'synth\xe9tique_1' (line 1)"),
            "scan --targets": ("{bad}", "'synth\xe9tique_1' (line 1)"),
        },
    ),
    "probesets-of-other-genes": (
        "synthetic_probesets.txt",
        lambda w: "\n".join(w.outside_probesets).encode(),
        {
            "predict --regulators": ("none of the 3 regulator ID(s) can be scored",),
            "predict --targets": ("none of the 3 target ID(s) can be scored",),
            "scan --tfs": ("{bad}", "looks like probeset IDs but the matrix uses agi IDs"),
            "scan --targets": ("{bad}", "scan does not translate IDs"),
        },
    ),
    "missing-file": (
        "synthetic_missing.txt",
        lambda w: None,
        {
            "predict --regulators": ("{bad}: file not found",),
            "predict --targets": ("{bad}: file not found",),
            "scan --tfs": ("--tfs: {bad}: file not found",),
            "scan --targets": ("--targets: {bad}: file not found",),
        },
    ),
}


def _id_list_cases():
    for kind in ID_LIST_KINDS:
        for command in ID_LIST_COMMANDS:
            yield pytest.param(kind, command, id=f"{kind}-{command}")


@pytest.mark.parametrize(("kind", "command"), list(_id_list_cases()))
def test_bad_id_list_file(world, tmp_path, kind, command) -> None:
    name, content, expected = ID_LIST_KINDS[kind]
    bad = write_bad(Kind(name, content, ()), world, tmp_path)
    fragments = [f.format(bad=bad) for f in expected[command]]
    check_refused(world, ID_LIST_COMMANDS[command], bad, tmp_path, fragments)


# -- model folders ---------------------------------------------------------------------------
def copy_dir(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for part in src.iterdir():
        (dst / part.name).write_bytes(part.read_bytes())
    return dst


def _edit_json(path: Path, **changes) -> None:
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


class _Tripwire:
    """Unpickling this creates a file: proves a pickle is never loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _nan_weights(model: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(model / "weights.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, str(model / "weights.safetensors"))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def make_bad_model(kind: str, w: World, folder: Path) -> Path:
    """A broken copy of the world's model (or something else given as --model)."""
    bad = folder / "synthetic_bad_model"
    if kind == "pickle-file":
        bad = folder / "synthetic_model.pkl"
        bad.write_bytes(pickle.dumps(_Tripwire(folder / "synthetic_unpickled_marker")))
        return bad
    if kind == "missing":
        return bad
    if kind == "empty-folder":
        bad.mkdir()
        return bad
    copy_dir(w.model, bad)
    meta = bad / "model.json"
    edits: dict[str, Callable[[], None]] = {
        "truncated-weights": lambda: _truncate(bad / "weights.safetensors"),
        "missing-weights": lambda: (bad / "weights.safetensors").unlink(),
        "nan-weights": lambda: _nan_weights(bad),
        "future-format-version": lambda: _edit_json(meta, format_version=99),
        "invalid-json": lambda: meta.write_text('{"format": "tfcnn-model",'),
        "binary-json": lambda: meta.write_bytes(binary_bytes()),
        "not-a-model-description": lambda: meta.write_text('{"format": "keras"}'),
        "broken-architecture": lambda: _edit_json(meta, architecture="synthetic"),
        "other-architecture": lambda: _edit_json(
            meta, architecture={**json.loads(meta.read_text())["architecture"], "units": 5}
        ),
        "truncated-expression": lambda: _truncate(bad / "expression.safetensors"),
        "expression-of-other-shape": lambda: save_numpy(
            {"zscores": np.zeros((3, N_SAMPLES), dtype=np.float32)},
            str(bad / "expression.safetensors"),
        ),
    }
    edits[kind]()
    return bad


MODEL_KINDS: dict[str, tuple[str, ...]] = {
    "truncated-weights": ("weights.safetensors is not a readable safetensors file", "truncated"),
    "missing-weights": ("has no weights.safetensors",),
    "nan-weights": ("weights.safetensors: tensor", "is not finite float32"),
    "future-format-version": ("model format version 99", "Upgrade tfcnn"),
    "invalid-json": ("model.json is not valid JSON",),
    "binary-json": ("model.json is not valid JSON",),
    "not-a-model-description": ("model.json is not a tfcnn model description",),
    "broken-architecture": ("model.json: 'architecture' must be a JSON object",),
    "other-architecture": ("weights.safetensors does not match the architecture in model.json",),
    "truncated-expression": ("expression.safetensors is not a readable expression file",),
    "expression-of-other-shape": ("expression.safetensors holds a (3, 8) matrix",),
    "pickle-file": ("is a file, not a tfcnn model", "never loaded"),
    "empty-folder": ("has no model.json",),
    "missing": ("does not exist",),
}
MODEL_COMMANDS: dict[str, Command] = {
    "evaluate": Command(
        lambda w, bad, out: ["evaluate", "-m", bad, "-p", w.pairset, "-o", out], "metrics.json"
    ),
    "predict": Command(
        lambda w, bad, out: ["predict", "-m", bad, "-r", w.tf, "-o", out], "predictions.csv"
    ),
    "scan": Command(lambda w, bad, out: ["scan", "-m", bad, "-o", out], "scan.parquet"),
    "explain pair": Command(
        lambda w, bad, out: [
            *("explain", "pair", "-m", bad, "--tf", w.tf, "--target", w.target, "-o", out)
        ],
        "pair.png",
    ),
    "explain model": Command(
        lambda w, bad, out: ["explain", "model", "-m", bad, "-p", w.pairset, "-o", out],
        "explained/",
    ),
    "models add": Command(
        lambda w, bad, out: ["models", "add", "-m", bad, "--name", out.name],
        "models/synthetic-model/",
        registry=True,
    ),
}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
@pytest.mark.parametrize("kind", list(MODEL_KINDS))
def test_bad_model(world, tmp_path, kind, command) -> None:
    bad = make_bad_model(kind, world, tmp_path)
    check_refused(world, MODEL_COMMANDS[command], bad, tmp_path, (str(bad), *MODEL_KINDS[kind]))
    assert not (tmp_path / "synthetic_unpickled_marker").exists()


# -- pair set folders ------------------------------------------------------------------------
def make_bad_pairset(kind: str, w: World, folder: Path) -> Path:
    bad = folder / "synthetic_bad_pairset"
    if kind == "missing":
        return bad
    if kind == "a-file":
        bad = folder / "synthetic_pairs.tsv"
        bad.write_bytes(w.pairs.read_bytes())
        return bad
    copy_dir(w.pairset, bad)
    table = bad / "pairs.tsv"

    def relabel(column: str, value: str) -> None:
        frame = pd.read_csv(table, sep="\t")
        frame[column] = frame[column].astype(object)
        frame.loc[0, column] = value
        frame.to_csv(table, sep="\t", index=False)

    edits: dict[str, Callable[[], None]] = {
        "truncated-examples": lambda: _truncate(bad / "expression.safetensors"),
        "future-format-version": lambda: _edit_json(bad / "pairset.json", format_version=99),
        "invalid-json": lambda: (bad / "pairset.json").write_text("{"),
        "empty-table": lambda: table.write_text(""),
        "label-not-0-or-1": lambda: relabel("label", "yes"),
        "unknown-split": lambda: relabel("split", "holdout"),
        "missing-table": lambda: table.unlink(),
    }
    edits[kind]()
    return bad


PAIRSET_KINDS: dict[str, tuple[str, ...]] = {
    "truncated-examples": ("expression.safetensors is unreadable", "rebuild the pair set"),
    "future-format-version": ("was written by a newer tfcnn",),
    "invalid-json": ("pairset.json is not valid JSON",),
    "empty-table": ("pairs.tsv is not a readable pair table",),
    "label-not-0-or-1": ("pairs.tsv line 2: label 'yes' is not 0 or 1",),
    "unknown-split": ("pairs.tsv line 2: split 'holdout' is not one of",),
    "missing-table": ("has no pairs.tsv",),
    "a-file": ("is not a pair set", "build-pairs"),
    "missing": ("is not a pair set",),
}
PAIRSET_COMMANDS: dict[str, Command] = {
    "train": Command(
        lambda w, bad, out: ["train", "-p", bad, "-o", out, "--epochs", "1"], "model/"
    ),
    "evaluate": Command(
        lambda w, bad, out: ["evaluate", "-m", w.model, "-p", bad, "-o", out], "metrics.json"
    ),
    "explain model": Command(
        lambda w, bad, out: ["explain", "model", "-m", w.model, "-p", bad, "-o", out], "explained/"
    ),
}


@pytest.mark.parametrize("command", list(PAIRSET_COMMANDS))
@pytest.mark.parametrize("kind", list(PAIRSET_KINDS))
def test_bad_pair_set(world, tmp_path, kind, command) -> None:
    bad = make_bad_pairset(kind, world, tmp_path)
    check_refused(world, PAIRSET_COMMANDS[command], bad, tmp_path, (str(bad), *PAIRSET_KINDS[kind]))


@pytest.mark.parametrize(
    ("which", "command", "fragments"),
    [
        ("fewer", "evaluate", ("expects 8 samples per profile", "has 6")),
        ("fewer", "explain model", ("has 6 samples but the model takes 8",)),
        (
            "renamed",
            "evaluate",
            ("sample 1 differs", "with 'synthetic_sample_0'", "has 'synthetic_other_0'"),
        ),
        ("renamed", "explain model", ("has other samples (or another order) than model",)),
    ],
)
def test_pair_set_of_other_samples_than_the_model(world, tmp_path, which, command, fragments):
    pairs = world.pairset_fewer if which == "fewer" else world.pairset_renamed
    check_refused(world, PAIRSET_COMMANDS[command], pairs, tmp_path, (str(pairs), *fragments))


# -- ID maps ---------------------------------------------------------------------------------
ID_MAP_KINDS: dict[str, Kind] = {
    "empty": Kind("synthetic_empty_map.csv", lambda w: b"", ("is empty; expected a header",)),
    "xlsx-renamed-csv": Kind(
        "synthetic_map.csv",
        lambda w: xlsx_bytes(),
        ("an Excel workbook (.xlsx) or another zip archive",),
    ),
    "random-binary": Kind("synthetic_map.txt", lambda w: binary_bytes(), ("is binary",)),
    "unrecognised-header": Kind(
        "synthetic_map_header.csv",
        lambda w: b"agi,probe\nAT1G01010,261585_at\n",
        ("unrecognised ID map header (line 1",),
    ),
    "short-line": Kind(
        "synthetic_map_short.csv",
        lambda w: b"locus,array_element_name\nAT1G01010,261585_at\nAT1G01020\n",
        ("line 3 has 1 field(s) but the header needs 2",),
    ),
    "no-one-to-one-link": Kind(
        "synthetic_map_ambiguous.csv",
        lambda w: b"locus,array_element_name\nAT1G01010;AT1G01020,261585_at\n",
        ("no one-to-one locus <-> probeset links",),
    ),
    "missing-file": Kind("synthetic_missing_map.csv", lambda w: None, ("file not found",)),
}
ID_MAP_COMMANDS: dict[str, Command] = {
    "build-pairs": Command(
        lambda w, bad, out: [
            *("build-pairs", "-x", w.expression, "-i", w.pairs_probesets),
            *("--id-map", bad, "-o", out),
        ],
        "pairs/",
    ),
    "train": Command(
        lambda w, bad, out: [
            *("train", "-x", w.expression, "-i", w.pairs_probesets, "--id-map", bad),
            *("-o", out, "--epochs", "1"),
        ],
        "model/",
    ),
    "predict": Command(
        lambda w, bad, out: ["predict", "-m", w.model, "-r", w.tf, "--id-map", bad, "-o", out],
        "predictions.csv",
    ),
    "study": Command(
        lambda w, bad, out: [*_study("-i")(w, w.pairs_probesets, out), "--id-map", bad], "study/"
    ),
}


@pytest.mark.parametrize("command", list(ID_MAP_COMMANDS))
@pytest.mark.parametrize("kind", list(ID_MAP_KINDS))
def test_bad_id_map(world, tmp_path, kind, command) -> None:
    k = ID_MAP_KINDS[kind]
    bad = write_bad(k, world, tmp_path)
    check_refused(world, ID_MAP_COMMANDS[command], bad, tmp_path, (str(bad), *k.fragments))


# -- the other file inputs: import-keras, rma, series-matrix, fetch, report, models add ------
KERAS = ROOT / "src" / "tfcnn" / "data" / "published_model" / "convnet_model.hdf5"
RMA = FIXTURES / "rma"


def _file(name: str, content: Callable[[], bytes] | None) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        if content is not None:
            path.write_bytes(content())
        return path

    return make


def _cel_dir(folder: Path, bad: str | None = None) -> Path:
    """Synthetic CEL files (tests/fixtures/rma); ``bad`` replaces one with a broken file."""
    cel = folder / "synthetic_cel"
    cel.mkdir(exist_ok=True)
    for i in (1, 2, 4):
        (cel / f"GSM{i}.CEL").write_bytes((RMA / f"array{i}.CEL").read_bytes())
    if bad == "truncated":
        (cel / "GSM4.CEL").write_bytes((RMA / "array4.CEL").read_bytes()[:1000])
    elif bad == "not-a-cel":
        (cel / "GSM4.CEL").write_bytes(xlsx_bytes())
    elif bad is not None:
        (cel / "GSM4.CEL").write_bytes(BAD_CELS[bad]())
    return cel


def _cel_v3(*edits: tuple[bytes, bytes]) -> Callable[[], bytes]:
    """A synthetic text CEL with ``edits`` (old, new) applied once each."""

    def make() -> bytes:
        data = (RMA / "array1.CEL").read_bytes()
        for old, new in edits:
            assert old in data
            data = data.replace(old, new, 1)
        return data

    return make


def _cel_v4_size(cols: int, rows: int) -> bytes:
    """A synthetic binary CEL whose header claims a cols x rows chip (and as many cells)."""
    import struct

    data = bytearray((RMA / "array4.CEL").read_bytes())
    struct.pack_into("<3i", data, 8, cols, rows, cols * rows % 2**31)
    return bytes(data)


def _gzip_bomb() -> bytes:
    """About 64 KB of gzip that expands to 64 MiB of zeros (the guard stops at 16 MiB)."""
    import gzip

    return gzip.compress(bytes(64 * 2**20), 9)


#: Broken CEL files (issue 12, #16 and #19); each replaces GSM4.CEL of the synthetic folder.
BAD_CELS: dict[str, Callable[[], bytes]] = {
    "1e12 cells": _cel_v3(
        (b"Cols=20", b"Cols=1000000"),
        (b"Rows=20", b"Rows=1000000"),
        (b"NumberCells=400", b"NumberCells=1000000000000"),
    ),
    "NumberCells=abc": _cel_v3((b"NumberCells=400", b"NumberCells=abc")),
    "NaN intensity": _cel_v3((b"  1\t  0\t874.9", b"  1\t  0\tnan")),
    "repeated cell": _cel_v3((b"  1\t  0\t874.9", b"  0\t  0\t874.9")),
    "binary, 2^30 cells": lambda: _cel_v4_size(2**15, 2**15),
    "gzip bomb": _gzip_bomb,
}


def _keras(bad: Path, out: Path, *extra: object) -> list[object]:
    return ["import-keras", "--keras", bad, "-o", out, *extra]


def _rma_cdf(w: World, bad: Path, out: Path) -> list[object]:
    return ["rma", "--cel-dir", _cel_dir(bad.parent), "--cdf", bad, "-o", out]


def _rma_cel(w: World, bad: Path, out: Path) -> list[object]:
    return ["rma", "--cel-dir", bad, "--cdf", RMA / "synthetic.cdf", "-o", out]


def _rma_sheet(w: World, bad: Path, out: Path) -> list[object]:
    cel = _cel_dir(bad.parent)
    return ["rma", "--cel-dir", cel, "--cdf", RMA / "synthetic.cdf", "--sheet", bad, "-o", out]


def _cdf_cut() -> bytes:
    data = (RMA / "synthetic.cdf").read_bytes()
    return data[: data.rindex(b"\n", 0, len(data) // 2) + 1]  # whole lines, half of them


def _series(w: World, bad: Path, out: Path) -> list[object]:
    return ["series-matrix", "--series", bad, "-o", out]


def _series_matrix(*rows: str, header: str = "GSM1\tGSM2\tGSM3") -> Callable[[], bytes]:
    """A synthetic series matrix: header on line 3, probes p1_at, p2_at, then ``rows``."""
    lines = [
        '!Series_title\t"synthetic"',
        "!series_matrix_table_begin",
        '"ID_REF"\t' + "\t".join(f'"{h}"' for h in header.split("\t")),
        '"p1_at"\t1.5\t2.5\t3.5',
        '"p2_at"\t4.5\t5.5\t6.5',
        *rows,
        "!series_matrix_table_end",
    ]
    return lambda: ("\n".join(lines) + "\n").encode()


def _fetch(w: World, bad: Path, out: Path) -> list[object]:
    return ["fetch", "atgenexpress", "--sheet", bad, "--dest", out, "--no-progress"]


def _report(w: World, bad: Path, out: Path) -> list[object]:
    return ["report", bad, "-o", out]


def _results(content: str | None) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "synthetic_results"
        path.mkdir()
        if content is not None:
            (path / "study-config.json").write_text(content)
        return path

    return make


def _model_named(name: str) -> Callable[[World, Path, Path], list[object]]:
    return lambda w, bad, out: ["models", "add", "-m", w.model, "--name", name]


OTHER_CASES = [
    # (id, command, make the bad input in a folder, fragments)
    (
        "import-keras: empty file",
        Command(lambda w, b, o: _keras(b, o), "model/"),
        _file("synthetic_empty.hdf5", lambda: b""),
        ("is not a readable HDF5 file",),
    ),
    (
        "import-keras: truncated HDF5",
        Command(lambda w, b, o: _keras(b, o), "model/"),
        _file("synthetic_cut.hdf5", lambda: KERAS.read_bytes()[:50_000]),
        ("is not a readable HDF5 file", "truncated file"),
    ),
    (
        "import-keras: xlsx renamed .h5",
        Command(lambda w, b, o: _keras(b, o), "model/"),
        _file("synthetic_workbook.h5", xlsx_bytes),
        ("is not a readable HDF5 file",),
    ),
    (
        "import-keras: missing file",
        Command(lambda w, b, o: _keras(b, o), "model/"),
        _file("synthetic_missing.h5", None),
        ("file not found",),
    ),
    (
        "import-keras: provenance not JSON",
        Command(lambda w, b, o: _keras(KERAS, o, "--provenance", b), "model/"),
        _file("synthetic_provenance.json", lambda: b"{synthetic"),
        ("is not valid JSON",),
    ),
    (
        "import-keras: provenance not UTF-8",
        Command(lambda w, b, o: _keras(KERAS, o, "--provenance", b), "model/"),
        _file("synthetic_provenance.json", lambda: '{"d": "caf\xe9"}'.encode("latin-1")),
        ("is not valid JSON", "utf-8"),
    ),
    (
        "import-keras: provenance a JSON list",
        Command(lambda w, b, o: _keras(KERAS, o, "--provenance", b), "model/"),
        _file("synthetic_provenance.json", lambda: b"[1]"),
        ("must hold a JSON object",),
    ),
    (
        "import-keras: provenance missing",
        Command(lambda w, b, o: _keras(KERAS, o, "--provenance", b), "model/"),
        _file("synthetic_provenance.json", None),
        ("No such file or directory",),
    ),
    (
        "rma: empty CDF",
        Command(_rma_cdf, "rma.tsv"),
        _file("synthetic_empty.cdf", lambda: b""),
        ("is not a CDF file",),
    ),
    (
        "rma: truncated CDF",
        Command(_rma_cdf, "rma.tsv"),
        _file("synthetic_cut.cdf", _cdf_cut),
        ("the file is truncated",),
    ),
    (
        "rma: xlsx renamed .cdf",
        Command(_rma_cdf, "rma.tsv"),
        _file("synthetic_workbook.cdf", xlsx_bytes),
        ("is not a CDF file",),
    ),
    (
        "rma: missing CDF",
        Command(_rma_cdf, "rma.tsv"),
        _file("synthetic_missing.cdf", None),
        ("cannot read", "No such file"),
    ),
    (
        "rma: truncated CEL file",
        Command(_rma_cel, "rma.tsv"),
        lambda folder: _cel_dir(folder, "truncated"),
        ("GSM4.CEL", "truncated"),
    ),
    (
        "rma: xlsx renamed .CEL",
        Command(_rma_cel, "rma.tsv"),
        lambda folder: _cel_dir(folder, "not-a-cel"),
        ("GSM4.CEL is not a CEL file",),
    ),
    (
        "rma: folder without CEL files",
        Command(_rma_cel, "rma.tsv"),
        lambda folder: (folder / "synthetic_no_cel").mkdir() or folder / "synthetic_no_cel",
        ("no CEL files found in",),
    ),
    (
        "rma: missing CEL folder",
        Command(_rma_cel, "rma.tsv"),
        _file("synthetic_missing_cel", None),
        ("is not a folder of CEL files",),
    ),
    (
        "rma: sheet is xlsx",
        Command(_rma_sheet, "rma.tsv"),
        _file("synthetic_sheet.csv", xlsx_bytes),
        ("synthetic_sheet.csv",),
    ),
    (
        "series-matrix: empty file",
        Command(_series, "series.tsv"),
        _file("synthetic_empty.txt", lambda: b""),
        ("is not a GEO series-matrix file",),
    ),
    (
        "series-matrix: random binary",
        Command(_series, "series.tsv"),
        _file("synthetic_binary.txt", binary_bytes),
        ("is not a GEO series-matrix file",),
    ),
    (
        "series-matrix: missing file",
        Command(_series, "series.tsv"),
        _file("synthetic_missing.txt", None),
        ("cannot read", "No such file"),
    ),
    (
        "fetch atgenexpress: empty sheet",
        Command(_fetch, "cel/"),
        _file("synthetic_sheet.csv", lambda: b""),
        ("sample sheet has no column(s)",),
    ),
    (
        "fetch atgenexpress: xlsx sheet",
        Command(_fetch, "cel/"),
        _file("synthetic_sheet.csv", xlsx_bytes),
        ("is not UTF-8 text",),
    ),
    (
        "fetch atgenexpress: no usable row",
        Command(_fetch, "cel/"),
        _file("synthetic_sheet.csv", lambda: b"sample_id,cel_file_ftp\nsynthetic,none\n"),
        ("has no usable row",),
    ),
    (
        "fetch atgenexpress: missing sheet",
        Command(_fetch, "cel/"),
        _file("synthetic_sheet.csv", None),
        ("does not exist",),
    ),
    (
        "report: not a results folder",
        Command(_report, "report.html"),
        _results(None),
        ("is not a tfcnn results folder",),
    ),
    (
        "report: broken study-config.json",
        Command(_report, "report.html"),
        _results("{synthetic"),
        ("study-config.json is not valid JSON",),
    ),
    # issue 12 (#16, #17, #19): declared sizes, gzip bombs, damaged series matrices
    *[
        (
            f"rma: CEL with {kind}",
            Command(_rma_cel, "rma.tsv"),
            functools.partial(_cel_dir, bad=kind),
            ("GSM4.CEL", fragment),
        )
        for kind, fragment in [
            ("1e12 cells", "a 1,000,000 x 1,000,000 chip is not a real array"),
            ("NumberCells=abc", "line 23: NumberCells='abc' is not a whole number"),
            ("NaN intensity", "line 26: cell (1, 0) has intensity nan, not a finite number"),
            ("repeated cell", "cell (0, 0) appears twice (lines 25 and 26)"),
            ("binary, 2^30 cells", "a 32,768 x 32,768 chip is not a real array"),
            ("gzip bomb", "refused as a possible decompression bomb"),
        ]
    ],
    *[
        (
            f"series-matrix: {kind}",
            Command(_series, "series.tsv"),
            _file("synthetic_series.txt", content),
            fragments,
        )
        for kind, content, fragments in [
            (
                "extra field",
                _series_matrix('"p3_at"\t1\t2\t3\t4'),
                ("line 6: 5 field(s) but the header (line 3) has 4",),
            ),
            (
                "text value",
                _series_matrix('"p3_at"\t1\thigh\t3'),
                ("line 6, column 'GSM2': value 'high' is not a number",),
            ),
            (
                "inf",
                _series_matrix('"p3_at"\t1\tinf\t3'),
                ("line 6, column 'GSM2': value 'inf' is infinite",),
            ),
            (
                "1e309",
                _series_matrix('"p3_at"\t1\t1e309\t3'),
                ("line 6, column 'GSM2': value '1e309' is infinite",),
            ),
            (
                "duplicate probe",
                _series_matrix('"p1_at"\t1\t2\t3'),
                ("probe 'p1_at' appears more than once (line 4 and line 6)",),
            ),
            (
                "duplicate GSM column",
                _series_matrix(header="GSM1\tGSM1\tGSM3"),
                ("line 3: sample 'GSM1' is the header of both column 2 and column 3",),
            ),
        ]
    ],
]


@pytest.mark.parametrize(
    ("command", "make", "fragments"),
    [pytest.param(*case[1:], id=case[0]) for case in OTHER_CASES],
)
def test_other_bad_inputs(world, tmp_path, command, make, fragments) -> None:
    bad = make(tmp_path)
    check_refused(world, command, bad, tmp_path, (str(bad), *fragments))


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("synthetic model!", "may only use letters"), ("published-2019", "bundled model's name")],
)
def test_models_add_bad_name(world, tmp_path, name, fragment) -> None:
    command = Command(_model_named(name), "models/", registry=True)
    check_refused(world, command, world.model, tmp_path, (repr(name), fragment))


# -- inputs that are accepted, with a warning or by design (the catalogue's "accepted" rows) --
def _matrix(w: World) -> pd.DataFrame:
    return pd.read_csv(w.expression, sep="\t", index_col=0)


def _background_gene(w: World) -> str:
    """A gene in no known pair (so the pair set does not change without it)."""
    pairs = pd.read_csv(w.pairs, sep="\t")
    used = set(pairs["tf"]) | set(pairs["target"])
    return next(g for g in reversed(w.genes) if g not in used)


@pytest.mark.parametrize("command", ["build-pairs", "predict", "scan", "explain-pair"])
def test_constant_profile_is_dropped_with_a_warning_naming_it(world, tmp_path, command) -> None:
    frame = _matrix(world)
    gene = _background_gene(world)
    frame.loc[gene] = 5.0
    matrix = tmp_path / "synthetic_one_constant.tsv"
    frame.to_csv(matrix, sep="\t")
    output = tmp_path / EXPRESSION_COMMANDS[command].output.rstrip("/")
    result = run(*EXPRESSION_COMMANDS[command].build(world, matrix, output), home=world.home)
    succeeded(result)
    warning = " ".join(plain(result.stderr).split())
    assert "dropping 1 gene(s) with a constant profile" in warning and gene in warning
    assert output.exists()


@pytest.mark.parametrize("command", ["predict", "scan", "explain-pair"])
def test_profile_constant_over_the_model_samples_only(world, tmp_path, command) -> None:
    """Extra columns are left out (by name); a gene flat over the model's samples is dropped."""
    frame = _matrix(world)
    gene = _background_gene(world)
    frame.loc[gene] = 5.0
    frame.insert(0, "synthetic_extra_sample", 1.0)
    frame.loc[gene, "synthetic_extra_sample"] = 9.0
    matrix = tmp_path / "synthetic_extra_sample.tsv"
    frame.to_csv(matrix, sep="\t")
    output = tmp_path / EXPRESSION_COMMANDS[command].output.rstrip("/")
    result = run(*EXPRESSION_COMMANDS[command].build(world, matrix, output), home=world.home)
    succeeded(result)
    warning = " ".join(plain(result.stderr).split())
    assert "constant over the 8 samples used" in warning and gene in warning
    assert "1 column(s) of" in warning and "'synthetic_extra_sample'" in warning


def test_scan_on_reordered_samples_matches_the_model_matrix(world, tmp_path) -> None:
    frame = _matrix(world)
    matrix = tmp_path / "synthetic_reordered.tsv"
    frame[frame.columns[::-1]].to_csv(matrix, sep="\t")
    succeeded(
        run("scan", "-m", world.model, "-x", matrix, "-o", tmp_path / "a.parquet", home=world.home)
    )
    succeeded(run("scan", "-m", world.model, "-o", tmp_path / "b.parquet", home=world.home))
    a = pd.read_parquet(tmp_path / "a.parquet")
    b = pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_latin1_bytes_are_read_as_latin1(world, tmp_path) -> None:
    text = world.expression.read_text().replace("synthetic_sample_0", "synth\xe9tique_0", 1)
    matrix = tmp_path / "synthetic_latin1.tsv"
    matrix.write_bytes(text.encode("latin-1"))
    succeeded(
        run("build-pairs", "-x", matrix, "-i", world.pairs, "-o", tmp_path / "p", home=world.home)
    )
    samples = json.loads((tmp_path / "p" / "pairset.json").read_text())["samples"]
    assert samples[0] == "synth\xe9tique_0"


def test_comma_separated_tsv_of_pairs_is_read(world, tmp_path) -> None:
    pairs = tmp_path / "synthetic_commas.tsv"
    pairs.write_text(world.pairs.read_text().replace("\t", ","))
    out = succeeded(
        run(
            "build-pairs",
            "-x",
            world.expression,
            "-i",
            pairs,
            "-o",
            tmp_path / "p",
            home=world.home,
        )
    )
    assert "48 known pairs -> 48 positives" in out


def test_atregnet_row_with_shifted_columns_is_named(world, tmp_path) -> None:
    table = tmp_path / "synthetic_atregnet.tsv"
    table.write_bytes(atregnet(world, lambda rows: _insert_field(rows, slice(3, 4))))
    result = run(
        "build-pairs", "-x", world.expression, "-i", table, "-o", tmp_path / "p", home=world.home
    )
    out = succeeded(result)
    assert "47 known pairs -> 47 positives" in out
    warning = " ".join(plain(result.stderr).split())
    assert "1 row(s) have more fields than the header's 8 (line 4)" in warning


def test_probeset_pairs_with_an_id_map(world, tmp_path) -> None:
    out = succeeded(
        run(
            *("build-pairs", "-x", world.expression, "-i", world.pairs_probesets),
            *("--id-map", "ath1-map", "-o", tmp_path / "p"),
            home=world.home,
        )
    )
    assert "48 known pairs -> 48 positives" in out


@pytest.mark.parametrize("command", ["predict", "scan", "explain-pair"])
def test_other_sample_names(world, tmp_path, command) -> None:
    """The model records its sample names: columns are matched by name, never by position."""
    frame = _matrix(world)
    frame.columns = [f"synthetic_other_{j}" for j in range(N_SAMPLES)]
    matrix = tmp_path / "synthetic_renamed.tsv"
    frame.to_csv(matrix, sep="\t")
    fragments = (str(matrix), "lacks 8 of the model's 8 samples", "'synthetic_sample_0'")
    check_refused(world, EXPRESSION_COMMANDS[command], matrix, tmp_path, fragments)


@pytest.mark.parametrize("command", ["predict", "scan", "explain-pair"])
def test_fewer_samples_than_the_model(world, tmp_path, command) -> None:
    matrix = tmp_path / "synthetic_6_samples.tsv"
    _matrix(world).iloc[:, :6].to_csv(matrix, sep="\t")
    fragments = (str(matrix), "lacks 2 of the model's 8 samples", "'synthetic_sample_6'")
    check_refused(world, EXPRESSION_COMMANDS[command], matrix, tmp_path, fragments)


def test_ids_of_the_other_namespace_are_mapped_by_predict(world, tmp_path) -> None:
    """Probesets to an AGI-keyed model, and AGI codes to a probeset-keyed matrix."""
    id_map = read_id_map(resolve_path("ath1-map"))
    probe_tf = id_map.agi_to_probeset[world.tf]
    out = tmp_path / "a.csv"
    succeeded(
        run(
            "predict",
            "-m",
            world.model,
            "-r",
            probe_tf,
            "-t",
            world.target,
            "-o",
            out,
            home=world.home,
        )
    )
    row = pd.read_csv(out).iloc[0]
    assert (row["regulator"], row["regulator_probeset"]) == (world.tf, probe_tf)
    out = tmp_path / "b.csv"
    succeeded(
        run(
            *("predict", "-m", world.model, "-x", world.expression_probesets),
            *("-r", world.tf, "-t", world.target, "-o", out),
            home=world.home,
        )
    )
    row = pd.read_csv(out).iloc[0]
    assert (row["regulator"], row["regulator_agi"]) == (probe_tf, world.tf)


def test_predict_log2_of_linear_values(world, tmp_path) -> None:
    """Linear values: a warning that suggests --log2; with it, the log-scale scores."""
    frame = _matrix(world)
    linear = tmp_path / "synthetic_linear.tsv"
    (2.0**frame * 100).to_csv(linear, sep="\t")
    args = ["predict", "-m", world.model, "-r", world.tf, "-t", world.target]
    warned = run(*args, "-x", linear, "-o", tmp_path / "a.csv", home=world.home)
    succeeded(warned)
    assert "pass --log2" in " ".join(plain(warned.stderr).split())
    succeeded(run(*args, "-x", linear, "--log2", "-o", tmp_path / "b.csv", home=world.home))
    succeeded(run(*args, "-x", world.expression, "-o", tmp_path / "c.csv", home=world.home))
    b, c = (pd.read_csv(tmp_path / f"{n}.csv") for n in "bc")
    assert b["probability"].iloc[0] == pytest.approx(c["probability"].iloc[0], abs=1e-6)
    message = refused(run(*args, "--log2", "-o", tmp_path / "d.csv", home=world.home), "--log2")
    assert "--expression" in message


# -- interrupted runs: SIGKILL mid-run, then rerun the same command ------------------------------
@pytest.fixture(scope="module")
def training_set(tmp_path_factory) -> dict[str, Path]:
    """A synthetic pair set big enough that training visibly takes several epochs."""
    d = tmp_path_factory.mktemp("synthetic_interrupted")
    expr, known = planted_dataset(
        n_tfs=20, targets_per_tf=20, n_background=100, n_samples=24, seed=4
    )
    write_tsv(expr, d / "synthetic_expression.tsv")
    write_pairs(known, d / "synthetic_pairs.tsv")
    succeeded(
        run(
            *("build-pairs", "-x", d / "synthetic_expression.tsv"),
            *("-i", d / "synthetic_pairs.tsv", "-o", d / "synthetic_pairset"),
            home=d,
        )
    )
    return {
        "dir": d,
        "expression": d / "synthetic_expression.tsv",
        "pairs": d / "synthetic_pairs.tsv",
        "pairset": d / "synthetic_pairset",
    }


def _spawn(args: list[object]) -> subprocess.Popen:
    """``tfcnn ARGS`` in its own session, one torch thread, progress bars drawn live."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TTY_COMPATIBLE": "1",  # rich draws the live progress bar although stderr is a pipe
        "TTY_INTERACTIVE": "1",
        "COLUMNS": "200",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from tfcnn.apps.cli import main; main()", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )


def _kill_when(proc: subprocess.Popen, ready: Callable[[str], bool], timeout: float = 60) -> str:
    """SIGKILL the process group as soon as ``ready(stderr so far)``; the stderr read."""
    os.set_blocking(proc.stderr.fileno(), False)
    seen = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = proc.stderr.read() or b""
        seen += chunk
        text = plain(seen.decode("utf-8", "replace"))
        if ready(text):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            proc.stderr.close()
            return text
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before it could be killed: {text}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    pytest.fail("the run never reached the point where it should be killed")


def test_killed_training_leaves_no_model_and_reruns(training_set, tmp_path) -> None:
    import torch

    output = tmp_path / "synthetic_models" / "synthetic_model"
    output.parent.mkdir()
    epochs = 60
    args = ["train", "-p", training_set["pairset"], "-o", output, "--epochs", epochs]
    proc = _spawn(args)
    progress = re.compile(rf"(\d+)/{epochs} epochs")

    def mid_run(text: str) -> bool:
        done = [int(m) for m in progress.findall(text)]
        return bool(done) and 1 <= max(done) < epochs

    seen = _kill_when(proc, mid_run)
    assert proc.returncode == -signal.SIGKILL
    assert max(int(m) for m in progress.findall(seen)) < epochs  # killed mid-training
    # Nothing that could be loaded as a model, nor any partial file, is left.
    assert os.listdir(output.parent) == []
    with pytest.raises(ModelFormatError, match="does not exist"):
        PairCNN.load(output)
    # The same command again: it trains and writes the model ...
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        succeeded(run(*args, home=tmp_path))
    finally:
        torch.set_num_threads(threads)
    model = PairCNN.load(output)
    assert len(model.history_) == epochs
    assert sorted(os.listdir(output.parent)) == [output.name]
    # ... and only now, with an output in place, refuses without --force.
    before = snapshot(output)
    refused(run(*args, home=tmp_path), "already exists", "--force")
    assert snapshot(output) == before


def _finished_runs(results: Path) -> list[Path]:
    """metrics.json of finished runs (pathlib's '*' also matches the hidden temporaries)."""
    runs = results / "runs"
    return sorted(p for p in runs.glob("*/metrics.json") if not p.parent.name.startswith("."))


def _metrics(results: Path) -> dict[str, dict]:
    """Every finished run's metrics (timings dropped), by run folder."""
    out = {}
    for path in _finished_runs(results):
        metrics = json.loads(path.read_text())
        metrics.pop("seconds", None)
        out[path.parent.name] = metrics
    return out


def test_killed_tuning_scan_resumes_without_redoing_finished_runs(training_set, tmp_path) -> None:
    output = tmp_path / "synthetic_grid"
    args = [
        *("tune", "grid", "-x", training_set["expression"], "-i", training_set["pairs"]),
        *("--values", "2,4", "--epochs", "15", "--train-pairs", "200"),
        *("--validation-pairs", "40", "--workers", "1", "-o"),
    ]
    proc = _spawn([*args, output])
    _kill_when(proc, lambda _: bool(_finished_runs(output)))
    assert proc.returncode == -signal.SIGKILL
    finished = {p.parent.name: p.stat().st_mtime_ns for p in _finished_runs(output)}
    assert 1 <= len(finished) < 8, "kill the run after some, not all, of its 8 configs"
    assert not (output / "study.json").exists()

    resumed = succeeded(run(*args, output, home=tmp_path))
    assert f"{8 - len(finished)} runs ran, {len(finished)} reused" in resumed
    for name, mtime in finished.items():  # finished runs were not redone
        assert (output / "runs" / name / "metrics.json").stat().st_mtime_ns == mtime
    assert not [p for p in (output / "runs").iterdir() if p.name.startswith(".")]

    fresh = tmp_path / "synthetic_grid_uninterrupted"
    assert "8 runs ran, 0 reused" in succeeded(run(*args, fresh, home=tmp_path))
    assert _metrics(output) == _metrics(fresh) and len(_metrics(fresh)) == 8
    tables = [json.loads((d / "study.json").read_text())["tuning"] for d in (output, fresh)]
    assert tables[0] == tables[1]


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path) -> None:
    """A SIGKILLed writer leaves its temporary sibling; the next write of that output on this
    host removes it, but never one of a live process or of another host."""
    from tfcnn.io import atomic as fileio

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = fileio._HOST
    output = tmp_path / "synthetic_out.json"
    stale = [
        tmp_path / f".synthetic_out.json.{host}-{dead.pid}.abcd1234.tmp",
        tmp_path / f".synthetic_out.json.{host}-{dead.pid}.efgh5678.old",
    ]
    stale[0].write_text("partial")
    stale[1].mkdir()
    (stale[1] / "synthetic_out.json").write_text("old")
    kept = [
        tmp_path / f".synthetic_out.json.{host}-{os.getpid()}.ijkl9012.tmp",  # alive
        tmp_path / f".synthetic_out.json.otherhost-{dead.pid}.mnop3456.tmp",  # elsewhere
        tmp_path / f".other.json.{host}-{dead.pid}.qrst7890.tmp",  # another output
    ]
    for path in kept:
        path.write_text("in progress")
    # force: the dead writer's .old holds an output it had set aside, which is put back
    # first (tests/test_reliability.py) and so exists.
    fileio.write_text(output, "{}\n", force=True)
    assert output.read_text() == "{}\n"
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)
