"""Issue 16 through the CLI: the silent misreads give the right result or a clear refusal.

Same contract as tests/test_bad_inputs.py (whose synthetic world and checks this reuses):
exit code 2, one message naming the file (and line where there is one) and the fix, no
output or temporary file left, an existing output untouched. Every file is synthetic.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests import test_bad_inputs as catalogue
from tests.test_bad_inputs import (
    EXPRESSION_COMMANDS,
    Command,
    Kind,
    World,
    check_refused,
    refused,
    run,
    succeeded,
    write_bad,
)

world = catalogue.world  # the catalogue's synthetic world (a module-scoped fixture)


def _frame(w: World) -> pd.DataFrame:
    return pd.read_csv(w.expression, sep="\t", index_col=0)


def _transposed(w: World) -> bytes:
    """The world's matrix as samples x genes (scanpy / pySCENIC CSV layout)."""
    return _frame(w).T.rename_axis("cell").to_csv(sep="\t").encode()


def _dream5(w: World) -> bytes:
    """Samples x genes without row names (DREAM5's expression files)."""
    return _frame(w).T.to_csv(sep="\t", index=False).encode()


def _gene_by_gene(w: World) -> bytes:
    genes = list(_frame(w).index)
    frame = _frame(w).iloc[:8, :]
    frame.columns = genes[8 : 8 + frame.shape[1]]
    return frame.to_csv(sep="\t").encode()


ORIENTATION_KINDS: dict[str, Kind] = {
    "samples-x-genes": Kind(
        "synthetic_cells_x_genes.tsv",
        _transposed,
        ("looks transposed: its columns are named like gene IDs", "pass --transpose"),
    ),
    "dream5-no-row-names": Kind(
        "synthetic_dream5_expression.tsv",
        _dream5,
        ("line 2: gene ID", "is a number", "DREAM5", "pass --transpose"),
    ),
    "gene-by-gene": Kind(
        "synthetic_gene_by_gene.tsv",
        _gene_by_gene,
        ("is ambiguous", "read the other way round it has"),
    ),
}


@pytest.mark.parametrize("command", ["build-pairs", "train", "predict", "scan"])
@pytest.mark.parametrize("kind", list(ORIENTATION_KINDS))
def test_matrix_the_wrong_way_round_is_refused(world, tmp_path, kind, command) -> None:
    k = ORIENTATION_KINDS[kind]
    bad = write_bad(k, world, tmp_path)
    check_refused(world, EXPRESSION_COMMANDS[command], bad, tmp_path, (str(bad), *k.fragments))


def test_transpose_reads_the_same_pairs(world, tmp_path) -> None:
    for name, content in (("cells.tsv", _transposed), ("dream5.tsv", _dream5)):
        path = tmp_path / f"synthetic_{name}"
        path.write_bytes(content(world))
        out = tmp_path / f"synthetic_pairs_{name}"
        succeeded(
            run(
                "build-pairs",
                "-x",
                path,
                "--transpose",
                "-i",
                world.pairs,
                "-o",
                out,
                home=world.home,
            )
        )
        mine = pd.read_csv(out / "pairs.tsv", sep="\t")
        theirs = pd.read_csv(world.pairset / "pairs.tsv", sep="\t")
        pd.testing.assert_frame_equal(mine, theirs)


def test_dream5_gold_standard_zero_rows_are_not_positives(world, tmp_path) -> None:
    pairs = pd.read_csv(world.pairs, sep="\t")
    others = [g for g in world.genes if g not in set(pairs.tf) | set(pairs.target)]
    lines = [f"{tf}\t{tg}\t1" for tf, tg in zip(pairs.tf, pairs.target, strict=True)]
    lines += [f"{pairs.tf[0]}\t{g}\t0" for g in others[:10]]  # non-edges
    gold = tmp_path / "synthetic_DREAM5_GoldStandard.tsv"
    gold.write_text("\n".join(lines) + "\n")
    out = tmp_path / "synthetic_pairs"
    text = succeeded(
        run("build-pairs", "-x", world.expression, "-i", gold, "-o", out, home=world.home)
    )
    assert f"{len(pairs):,} known pairs" in text  # not len(pairs) + 10
    positives = pd.read_csv(out / "pairs.tsv", sep="\t").query("label == 1")
    kept = set(zip(positives.tf, positives.target, strict=True))
    assert not kept & {(pairs.tf[0], g) for g in others}
    bad = tmp_path / "synthetic_bad_label.tsv"
    rows = ["tf\ttarget\tlabel", *lines[:2], f"{pairs.tf[0]}\t{others[0]}\t2"]
    bad.write_text("\n".join(rows) + "\n")
    refused(
        run(
            "build-pairs", "-x", world.expression, "-i", bad, "-o", tmp_path / "x", home=world.home
        ),
        f"{bad}, line 4: label '2' is not 1/0",
    )


def test_beeline_header_is_not_an_edge(world, tmp_path) -> None:
    pairs = pd.read_csv(world.pairs, sep="\t")
    ref = tmp_path / "synthetic_refNetwork.csv"
    pairs.rename(columns={"tf": "Gene1", "target": "Gene2"}).assign(Type="+").to_csv(
        ref, index=False
    )
    out = tmp_path / "synthetic_pairs"
    text = succeeded(
        run("build-pairs", "-x", world.expression, "-i", ref, "-o", out, home=world.home)
    )
    assert f"{len(pairs):,} known pairs" in text
    assert "signed edges" in text and f"{len(pairs)} activating" in text


def test_unknown_output_extension_and_layout_are_refused_before_work(world, tmp_path) -> None:
    commands = {
        "scan": Command(lambda w, bad, out: ["scan", "-m", w.model, "-o", out], "edges.json"),
        "predict": Command(
            lambda w, bad, out: ["predict", "-m", w.model, "-r", w.tf, "-o", out], "table.json"
        ),
    }
    for command in commands.values():
        sub = tmp_path / command.output
        sub.mkdir()
        check_refused(world, command, world.expression, sub, ("unknown table format '.json'",))
    layout = Command(
        lambda w, bad, out: ["scan", "-m", w.model, "-o", out, "--layout", "arboreto"], "e.csv"
    )
    sub = tmp_path / "layout"
    sub.mkdir()
    check_refused(world, layout, world.expression, sub, ("--layout must be one of",))


def test_single_cell_options_on_a_table_are_refused(world, tmp_path) -> None:
    refused(
        run(
            "build-pairs",
            "-x",
            world.expression,
            "-i",
            world.pairs,
            "--pseudobulk",
            "x",
            "-o",
            tmp_path / "p",
            home=world.home,
        ),
        "--pseudobulk applies to single-cell files",
    )


def test_predict_writes_the_layout_by_extension(world, tmp_path) -> None:
    out = tmp_path / "synthetic_adj.tsv.gz"
    succeeded(
        run(
            "predict",
            "-m",
            world.model,
            "-r",
            world.tf,
            "--layout",
            "pyscenic",
            "-o",
            out,
            home=world.home,
        )
    )
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns[:3]) == ["TF", "target", "importance"]
    assert "rank" in table.columns and set(table.TF) == {world.tf}
