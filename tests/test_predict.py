"""`tfcnn predict` and tfcnn.inference.predict: parsing, ID mapping, tables, writers, errors.

Models are tiny and trained here on synthetic planted data (tests/predict_helpers.py).
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.predict_helpers import planted_pairs, train_synthetic_model
from tests.synthetic import write_tsv
from tfcnn.apps.cli import app
from tfcnn.errors import OutputExistsError, TfcnnInputError
from tfcnn.evaluation.metrics import percentile_in
from tfcnn.inference.matrix import OWN_MATRIX, scoring_matrix
from tfcnn.inference.predict import (
    COLUMNS,
    Predictor,
    QueryLimits,
    predict,
    table_format,
    write_table,
)
from tfcnn.io.expression import read_expression
from tfcnn.io.idlists import read_id_list, split_ids
from tfcnn.model.estimator import PairCNN

runner = CliRunner()


@pytest.fixture(scope="module")
def agi_model(tmp_path_factory):
    """(model dir, data folder): synthetic profiles, genes named after real AGI loci."""
    folder = tmp_path_factory.mktemp("agi_model")
    return train_synthetic_model(folder, agi=True), folder


@pytest.fixture(scope="module")
def predictor(agi_model):
    return Predictor(agi_model[0])


# -- parsing -------------------------------------------------------------------------------
def test_split_ids_accepts_every_separator_and_drops_comments():
    text = "AT1G01010, at1g01020\tAT1G01030\n\n 261585_at;AT1G01040\r\n# a comment AT9\n'AT1G01050'"
    assert split_ids(text) == [
        "AT1G01010",
        "at1g01020",
        "AT1G01030",
        "261585_at",
        "AT1G01040",
        "AT1G01050",
    ]
    assert split_ids(" ,\n\t ") == []


def test_read_id_list_reads_files_and_inline_lists(tmp_path):
    f = tmp_path / "regs.txt"
    f.write_text("AT1G01010\nAT1G01020\tAT1G01030\n", encoding="utf-8")
    got = read_id_list(f, "`regulators`")
    assert got.ids == ["AT1G01010", "AT1G01020", "AT1G01030"] and got.lines == [1, 2, 2]
    assert got.label == f"`regulators` file {f}"
    inline = read_id_list("AT1G01010,AT1G01020", "`regulators`")
    assert (inline.ids, inline.label) == (["AT1G01010", "AT1G01020"], "`regulators`")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("AT1G01010 caf\xe9".encode("latin-1"))
    assert read_id_list(latin).ids == ["AT1G01010", "caf\xe9"]
    with pytest.raises(TfcnnInputError, match="missing.txt: file not found"):
        read_id_list(tmp_path / "missing.txt")


# -- ID resolution -------------------------------------------------------------------------
def test_ids_in_any_case_and_probesets_map_to_the_model_genes(predictor):
    first = predictor.genes[0]
    probeset = predictor.id_map.agi_to_probeset[predictor.genes[1]]
    got = predictor.resolve([first.lower(), probeset, f"  {predictor.genes[2]} "], "regulator")
    assert [predictor.genes[r] for r in got.rows] == list(predictor.genes[:3])
    assert got.issues == []


def test_unknown_duplicate_and_unmappable_ids_are_reported_not_dropped(predictor):
    g0 = predictor.genes[0]
    p0 = predictor.id_map.agi_to_probeset[g0]
    outside = "AT5G61850"  # a real locus, not among the model's synthetic genes
    assert outside not in predictor.index
    tokens = [g0, g0.lower(), p0, "not_a_gene", outside, "999999_at"]
    got = predictor.resolve(tokens, "target")
    assert [predictor.genes[r] for r in got.rows] == [g0]
    problems = [(i.query_id, i.problem) for i in got.issues]
    assert problems == [
        (g0.lower(), "duplicate"),
        (p0, "duplicate"),
        ("not_a_gene", "unknown"),
        (outside, "unknown"),
        ("999999_at", "unmappable"),
    ]
    assert "not in the ID map" in got.issues[-1].detail
    assert "not an AGI code or ATH1 probeset" in got.issues[2].detail
    assert all(i.role == "target" for i in got.issues)


def test_a_probeset_mapping_to_a_gene_outside_the_model_is_unknown(predictor):
    probeset = predictor.id_map.agi_to_probeset["AT5G61850"]
    (issue,) = predictor.resolve([probeset], "regulator").issues
    assert issue.problem == "unknown" and "maps to AT5G61850" in issue.detail


def test_query_without_usable_id_is_an_error_naming_the_ids(predictor):
    with pytest.raises(TfcnnInputError, match=r"none of the 2 regulator ID\(s\).*'nope'"):
        predictor.predict("nope, AT5G61850", None)
    with pytest.raises(TfcnnInputError, match="no regulator ID given"):
        predictor.predict("  ", None)
    with pytest.raises(TfcnnInputError, match="target ID"):
        predictor.predict(predictor.genes[0], "AT5G61850")
    with pytest.raises(TfcnnInputError, match="same gene as regulator and target"):
        predictor.predict(predictor.genes[0], predictor.genes[0])


# -- the table ------------------------------------------------------------------------------
def test_table_scores_every_pair_with_the_model_and_ranks_them(agi_model, predictor):
    model_dir, folder = agi_model
    regs = list(predictor.genes[:3])
    tgts = list(predictor.genes[2:12])
    result = predictor.predict(regs, tgts)
    table = result.table
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 3 * 10 - 1  # the self-pair (genes[2], genes[2]) is not scored
    assert result.n_self_pairs_skipped == 1
    assert set(zip(table.regulator, table.target, strict=True)) == {
        (r, t) for r in regs for t in tgts if r != t
    }
    # Independent check: the model on the pairs' z-scored profiles from its own file.
    model = PairCNN.load(model_dir)
    idx = {g: i for i, g in enumerate(model.record_.genes)}
    z = model.record_.zscores
    x = np.stack([z[[idx[r] for r in table.regulator]], z[[idx[t] for t in table.target]]], 1)
    np.testing.assert_allclose(table.probability, model.predict_proba(x)[:, 1], atol=1e-6)
    assert table.probability.is_monotonic_decreasing
    assert table["rank"].iloc[0] == 1 and table["rank"].is_monotonic_increasing
    # Both ID forms: AGI and probeset from the bundled map.
    row = table.iloc[0]
    assert row.regulator_agi == row.regulator
    assert row.regulator_probeset == predictor.id_map.agi_to_probeset[row.regulator]
    # Percentiles within the training distribution stored with the model.
    dist = model.record_.training_distribution
    np.testing.assert_allclose(
        table.percentile_vs_train_positives,
        np.round(percentile_in(dist, "positive", table.probability.to_numpy()), 2),
    )


def test_table_columns_are_their_own_arrays(agi_model, predictor):
    """The table takes its columns without copying: none may share memory with another
    column, with another query's table, or with the predictor's caches, so editing one
    result cannot change another (a model without training pairs included, whose three
    'in training' columns all say 'unknown')."""
    bare = PairCNN.load(agi_model[0])
    bare.record_.pairs = None
    for p in (predictor, Predictor(bare)):
        regs, tgts = list(p.genes[:4]), list(p.genes[3:20])
        first, second = (p.predict(regs, tgts).table for _ in range(2))
        arrays = [t[c].to_numpy() for t in (first, second) for c in t.columns]
        for i, a in enumerate(arrays):
            for b in arrays[i + 1 :]:
                assert not np.shares_memory(a, b)
        trained = first.pair_in_training.isin(["train positive", "train negative"]).sum()
        assert p.predict(regs, tgts).n_training_pairs == (trained if p is predictor else None)
        first.loc[0, "regulator_in_training"] = "edited"
        assert "edited" not in set(first.target_in_training) | set(first.pair_in_training)
        assert "edited" not in set(p.predict(regs, tgts).table.regulator_in_training)


def test_score_grid_is_the_same_for_any_number_of_workers(agi_model, predictor):
    """The engine's blocks run one torch thread each: workers change speed, not bytes."""
    n = len(predictor.genes)
    regs, tgts = np.arange(n), np.arange(n)[::-1]  # 2 blocks or more
    one = predictor.score_grid(regs, tgts, workers=1)
    seen: list[tuple[int, int]] = []
    two = predictor.score_grid(regs, tgts, workers=2, on_progress=lambda d, t: seen.append((d, t)))
    assert one.shape == (regs.size, tgts.size)
    np.testing.assert_array_equal(one, two)
    assert seen[-1] == (one.size, one.size) and len(seen) >= 2
    # the arbitrary-pair path agrees with the grid
    r, t = np.repeat(regs, tgts.size), np.tile(tgts, regs.size)
    np.testing.assert_allclose(predictor.score(r, t), one.ravel(), atol=1e-6)
    model = PairCNN.load(agi_model[0])
    x = np.stack([predictor.zscores[r], predictor.zscores[t]], 1)
    np.testing.assert_allclose(one.ravel(), model.predict_proba(x)[:, 1], atol=1e-5)


def test_both_engines_score_grids_alike_and_auto_uses_the_fused_kernel(agi_model, predictor):
    """predict and the web app score grids as scan does: the fused kernel when it can."""
    from tfcnn.inference.fused import numba_installed

    assert predictor.engine == ("numba" if numba_installed() else "torch")
    kind = {"numba": "FusedPairScorer", "torch": "PairScorer"}[predictor.engine]
    assert type(predictor._engine()[0]).__name__ == kind
    torch_predictor = Predictor(agi_model[0], engine="torch")
    assert torch_predictor.engine == "torch"
    n = len(predictor.genes)
    regs, tgts = np.arange(n)[::2], np.arange(n)[::-3]  # gathered, not contiguous
    fused = predictor.score_grid(regs, tgts)
    np.testing.assert_allclose(fused, torch_predictor.score_grid(regs, tgts), atol=1e-5)
    # the same table either way, up to float rounding
    a = predictor.predict(list(predictor.genes[:4])).table.set_index(["regulator", "target"])
    b = torch_predictor.predict(list(predictor.genes[:4])).table.set_index(["regulator", "target"])
    np.testing.assert_allclose(a.probability, b.probability.loc[a.index], atol=1e-5)


def test_queries_arriving_together_compile_the_model_once(agi_model):
    """A server's first queries may arrive at once: one scorer, built once."""
    from concurrent.futures import ThreadPoolExecutor

    fresh = Predictor(agi_model[0])
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(lambda _: fresh._engine(), range(8)))
    assert all(b is built[0] for b in built)


def test_an_engine_that_cannot_run_is_refused(agi_model, tmp_path):
    """--engine numba on a two-tower model, or an unknown engine: a clear error, exit 2."""
    with pytest.raises(TfcnnInputError, match="engine must be one of"):
        Predictor(agi_model[0], engine="gpu")
    regs = ",".join(Predictor(agi_model[0]).genes[:2])
    for engine in ("auto", "torch"):
        res = runner.invoke(
            app, ["predict", "-m", str(agi_model[0]), "-r", regs, "--engine", engine]
        )
        used = Predictor(agi_model[0], engine=engine).engine
        assert res.exit_code == 0 and f"by the {used} engine" in " ".join(res.stderr.split())
    res = runner.invoke(app, ["predict", "-m", str(agi_model[0]), "-r", "x", "--engine", "gpu"])
    assert res.exit_code == 2 and "--engine" in res.stderr and "Traceback" not in res.output
    two_tower = train_synthetic_model(tmp_path, two_tower=True)
    with pytest.raises(TfcnnInputError, match="pair CNN only"):
        Predictor(two_tower, engine="numba")
    assert Predictor(two_tower).engine == "torch"  # auto: the two-tower model's own scorer


def test_known_interactions_come_from_the_training_pairs(agi_model, predictor):
    _, folder = agi_model
    known = planted_pairs(folder)
    tf = sorted({t for t, _ in known})[0]
    result = predictor.predict([tf], None)
    marked = set(result.table.loc[result.table.known_interaction == "yes", "target"])
    assert marked == {t for r, t in known if r == tf}
    assert set(result.table.known_interaction) == {"yes", "no"}
    assert len(result.table) == len(predictor.genes) - 1  # every gene but the TF itself
    assert any("no targets given" in n for n in result.notes)


def test_models_carry_their_training_pairs_and_never_open_a_recorded_path(
    tmp_path, agi_model, monkeypatch
):
    """Model files are data: known pairs come from the model itself, never from a path."""
    import tfcnn.io.interactions

    model_dir, folder = agi_model
    moved = tmp_path / "data"
    shutil.copytree(folder, moved)
    (moved / "synthetic_pairs.tsv").unlink()
    model = PairCNN.load(moved / "model")
    tf = sorted({t for t, _ in planted_pairs(folder)})[0]
    # The interactions file is gone: the model still knows its pairs.
    result = Predictor(model).predict([tf], None)
    assert set(result.table.known_interaction) == {"yes", "no"}
    # A model without its pairs record (saved by an older tfcnn) whose model.json names
    # readable files: none is opened, and the column says why it cannot tell.
    opened = []
    real = tfcnn.io.interactions.read_interactions
    monkeypatch.setattr(
        tfcnn.io.interactions,
        "read_interactions",
        lambda *a, **k: opened.append(a) or real(*a, **k),
    )
    secret = tmp_path / "shadow"
    secret.write_text("tf\ttarget\nSECRET1\tSECRET2\n")
    secret.chmod(0o600)
    model.record_.pairs = None
    for source in (str(folder / "synthetic_pairs.tsv"), str(secret), "/etc/shadow"):
        model.record_.data["interactions"]["source"] = source
        p = Predictor(model)
        out = p.predict([model.record_.genes[0]], None)
        assert p.known_codes is None and set(out.table.known_interaction) == {"unknown"}
        assert any("does not carry its training interactions" in n for n in out.notes)
        assert "SECRET" not in " ".join(out.report_lines())
    assert opened == []
    # A model saved with a pairs record reads it back, and damaged records are refused.
    saved = PairCNN.load(model_dir)
    assert saved.record_.pairs is not None and saved.record_.pairs["known"].size == len(
        planted_pairs(folder)
    )


def test_limits_refuse_large_queries(predictor):
    with pytest.raises(TfcnnInputError, match=r"3 regulators .* at most 2 "):
        predictor.predict(list(predictor.genes[:3]), None, limits=QueryLimits(2, 100))
    with pytest.raises(TfcnnInputError, match="targets in this query; at most 5"):
        predictor.predict(predictor.genes[0], None, limits=QueryLimits(10, 5))


def test_scoring_on_another_matrix(tmp_path, agi_model, predictor):
    model_dir, folder = agi_model
    expr = read_expression(folder / "synthetic_expression.tsv")
    regs, tgts = list(predictor.genes[:2]), list(predictor.genes[5:9])
    own = predictor.predict(regs, tgts).table
    frame = pd.read_csv(folder / "synthetic_expression.tsv", sep="\t", index_col=0)
    # The model's samples in another order, with an extra column: matched by name.
    shuffled = frame[frame.columns[::-1]].assign(synthetic_extra=np.arange(len(frame)))
    shuffled.to_csv(tmp_path / "shuffled.tsv", sep="\t")
    other = predict(model_dir, regs, tgts, expression=tmp_path / "shuffled.tsv")
    np.testing.assert_allclose(other.table.probability, own.probability, atol=1e-6)
    assert any("1 column(s)" in n and "'synthetic_extra'" in n for n in other.notes)
    # Same values, renamed samples: refused, naming the samples missing.
    renamed = frame.set_axis([f"other_{i}" for i in range(frame.shape[1])], axis=1)
    renamed.to_csv(tmp_path / "renamed.tsv", sep="\t")
    with pytest.raises(
        TfcnnInputError, match=r"lacks 16 of the model's 16 samples \('synthetic_sample_0'"
    ):
        predict(model_dir, regs, tgts, expression=tmp_path / "renamed.tsv")
    # Genes keyed by probesets: AGI queries are mapped into that space.
    m = predictor.id_map.agi_to_probeset
    probes = tmp_path / "probes.tsv"
    write_tsv(expr.rename({g: m[g] for g in expr.genes}), probes)
    by_probe = predict(model_dir, regs, tgts, expression=probes)
    assert list(by_probe.table.regulator_agi) == list(own.regulator_agi)
    assert set(by_probe.table.regulator) == {m[g] for g in regs}
    np.testing.assert_allclose(by_probe.table.probability, own.probability, atol=1e-6)
    assert list(by_probe.table.known_interaction) == list(own.known_interaction)
    # Samples missing: refused, naming them.
    narrow = tmp_path / "narrow.tsv"
    frame.iloc[:, :9].to_csv(narrow, sep="\t")
    with pytest.raises(
        TfcnnInputError, match=r"lacks 7 of the model's 16 samples \('synthetic_sample_9', "
    ):
        predict(model_dir, regs, tgts, expression=narrow)


def test_scoring_matrix_reads_by_position_only_without_sample_names(tmp_path, agi_model):
    model_dir, folder = agi_model
    model = PairCNN.load(model_dir)
    own = scoring_matrix(model)
    assert own.source == OWN_MATRIX and own.notes == [] and own.zscores.dtype == np.float32
    frame = pd.read_csv(folder / "synthetic_expression.tsv", sep="\t", index_col=0)
    renamed = frame.set_axis([f"other_{i}" for i in range(frame.shape[1])], axis=1)
    renamed.to_csv(tmp_path / "renamed.tsv", sep="\t")
    with pytest.raises(TfcnnInputError, match="lacks 16 of the model's 16 samples"):
        scoring_matrix(model, tmp_path / "renamed.tsv")
    with pytest.raises(TfcnnInputError, match="`log2` applies to `expression`"):
        scoring_matrix(model, log2=True)
    model.record_.samples = []  # as the published model: no sample names recorded
    model.record_.provenance = {"caveat": "synthetic caveat"}
    by_position = scoring_matrix(model, tmp_path / "renamed.tsv", name="m")
    np.testing.assert_allclose(by_position.zscores, own.zscores, atol=1e-6)
    assert by_position.samples == list(renamed.columns)
    assert "model m records no sample names" in by_position.notes[0]
    assert "read by position" in by_position.notes[0]
    assert by_position.notes[1] == "CAVEAT (m): synthetic caveat"
    frame.iloc[:, :9].to_csv(tmp_path / "narrow.tsv", sep="\t")
    with pytest.raises(TfcnnInputError, match="has 9 samples but the model takes 16"):
        scoring_matrix(model, tmp_path / "narrow.tsv")
    model.record_.zscores = None
    with pytest.raises(TfcnnInputError, match="carries no expression matrix; pass `expression`"):
        scoring_matrix(model, name="m")


# -- writers ---------------------------------------------------------------------------------
def test_writers_by_extension_round_trip(tmp_path, predictor):
    result = predictor.predict("nonsense " + " ".join(predictor.genes[:2]), predictor.genes[3:7])
    for name, reader in (
        ("out.csv", lambda p: pd.read_csv(p)),
        ("out.tsv", lambda p: pd.read_csv(p, sep="\t")),
        ("out.xlsx", lambda p: pd.read_excel(p, sheet_name="predictions")),
    ):
        path = write_table(result, tmp_path / name)
        back = reader(path).fillna("")
        assert list(back.columns) == list(COLUMNS)
        assert list(back.regulator) == list(result.table.regulator)
        np.testing.assert_allclose(back.probability, result.table.probability, rtol=1e-12)
    unused = pd.read_excel(tmp_path / "out.xlsx", sheet_name="unused IDs")
    assert list(unused.query_id) == ["nonsense"]
    with pytest.raises(OutputExistsError):
        write_table(result, tmp_path / "out.csv")
    write_table(result, tmp_path / "out.csv", force=True)
    with pytest.raises(TfcnnInputError, match="end the file name in .csv, .tsv or .xlsx"):
        table_format(tmp_path / "out.json")


# -- CLI ------------------------------------------------------------------------------------
def test_cli_prints_csv_and_reports_unused_ids(tmp_path, agi_model, predictor):
    model_dir, _ = agi_model
    regs = tmp_path / "regs.txt"
    regs.write_text(f"{predictor.genes[0].lower()}\nnot_a_gene\n", encoding="utf-8")
    tgt = ",".join(predictor.genes[1:4])
    res = runner.invoke(app, ["predict", "-m", str(model_dir), "-r", str(regs), "-t", tgt])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln]
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == 1 + 3
    assert "not_a_gene" in res.stderr and "1 unknown" in res.stderr
    out = tmp_path / "pred.tsv"
    res = runner.invoke(
        app, ["predict", "-m", str(model_dir), "-r", str(regs), "-t", tgt, "-o", str(out)]
    )
    assert res.exit_code == 0 and len(pd.read_csv(out, sep="\t")) == 3
    res = runner.invoke(
        app, ["predict", "-m", str(model_dir), "-r", str(regs), "-t", tgt, "-o", str(out)]
    )
    assert res.exit_code == 2 and "--force" in res.stderr


def test_cli_errors_exit_2_without_traceback(agi_model):
    model_dir, _ = agi_model
    res = runner.invoke(app, ["predict", "-m", str(model_dir), "-r", "nope1 nope2"])
    assert res.exit_code == 2
    assert "none of the 2 regulator ID(s)" in res.stderr and "Traceback" not in res.output
    res = runner.invoke(app, ["predict", "-m", "no-such-model", "-r", "AT1G01010"])
    assert res.exit_code == 2 and "no-such-model" in res.stderr
    res = runner.invoke(app, ["predict", "-m", str(model_dir), "-r", "x", "-o", "out.json"])
    assert res.exit_code == 2 and ".xlsx" in res.stderr


def test_published_model_on_a_rebuilt_matrix_carries_the_caveat() -> None:
    """Scoring the bundled published model on another matrix always states the caveat."""
    import numpy as np
    import pandas as pd

    from tfcnn.inference.predict import Predictor
    from tfcnn.io.expression import from_dataframe

    rng = np.random.default_rng(0)
    genes = ["AT1G01010", "AT1G01020", "AT5G61850"]
    expr = from_dataframe(
        pd.DataFrame(
            rng.standard_normal((3, 232)),
            index=genes,
            columns=[f"synthetic_s{i}" for i in range(232)],
        )
    )
    notes = Predictor("published-2019", expression=expr).notes
    assert any(n.startswith("CAVEAT (published-2019)") and "not recorded" in n for n in notes)
