"""The web app's server logic, without a browser (tfcnn.apps.webapp.logic and the ASGI guard)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import gzip
import io
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.predict_helpers import train_synthetic_model
from tfcnn.apps.webapp import logic
from tfcnn.apps.webapp.app import UploadLimit, build_ui, create_app
from tfcnn.errors import TfcnnInputError
from tfcnn.inference.predict import COLUMNS, Prediction, QueryLimits, to_text
from tfcnn.model.registry import register_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_synthetic_model(tmp_path_factory.mktemp("web_model"), agi=True)


@pytest.fixture()
def home(tmp_path, monkeypatch, model_dir):
    """A TFCNN_HOME holding one registered synthetic model, 'synthetic-agi'."""
    monkeypatch.setenv("TFCNN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no results/demo of the checkout is offered
    register_model(model_dir, "synthetic-agi")
    return tmp_path / "home"


@pytest.fixture()
def cache(home):
    return logic.PredictorCache(logic.model_choices())


def genes(cache) -> list[str]:
    return cache.get("synthetic-agi").genes


def test_model_choices_list_registered_models_with_provenance_and_auroc(home, model_dir):
    choices = logic.model_choices()
    mine = [c for c in choices if c.key == "synthetic-agi"]
    assert len(mine) == 1
    c = mine[0]
    assert c.origin == "user" and c.n_samples == 16 and c.n_genes == 156
    assert c.test_auroc is not None and c.within_target is not None
    assert f"within-target AUROC {c.within_target:.3f}" in c.label  # the honest figure
    assert "synthetic_expression.tsv" in c.description
    # A directory given to `tfcnn serve --model` is offered too, first.
    assert logic.model_choices(str(model_dir))[0].key == str(model_dir)
    with pytest.raises(TfcnnInputError, match="neither a registered model nor a model directory"):
        logic.model_choices("no-such-model")


def test_read_upload_reads_ids_and_caps_the_size(tmp_path):
    f = tmp_path / "0.txt"
    f.write_text("AT1G01010\nAT1G01020, AT1G01030\n", encoding="utf-8")
    info = [{"name": "regs.txt", "size": f.stat().st_size, "datapath": str(f)}]
    root = tmp_path
    assert logic.read_upload(info, 1_000, "regulator", root) == [
        "AT1G01010",
        "AT1G01020",
        "AT1G01030",
    ]
    assert logic.read_upload(None, 1_000, "regulator", root) == []
    with pytest.raises(TfcnnInputError, match=r"'regs.txt' is 0.0 MB; files of at most"):
        logic.read_upload(info, 10, "regulator", root)
    lying = [{"name": "regs.txt", "size": 1, "datapath": str(f)}]  # size checked on disk too
    with pytest.raises(TfcnnInputError, match="files of at most 0.0 MB"):
        logic.read_upload(lying, 10, "regulator", root)
    gone = [{"name": "x.txt", "size": 1, "datapath": str(tmp_path / "gone")}]
    with pytest.raises(TfcnnInputError, match="did not arrive"):
        logic.read_upload(gone, 10, "regulator", root)


def test_read_upload_reads_only_files_inside_the_sessions_upload_folder(tmp_path):
    """A client can set a file input's datapath to anything: only Shiny's own are read."""
    root = tmp_path / "fileupload-abc"
    (root / "job").mkdir(parents=True)
    inside = root / "job" / "0.txt"
    inside.write_text("AT1G01010\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("AT5G99999\n")
    secret.chmod(0o600)
    link = root / "job" / "1.txt"
    link.symlink_to(secret)
    assert logic.read_upload([{"name": "a", "datapath": str(inside)}], 100, "target", root) == [
        "AT1G01010"
    ]
    for datapath in (
        "/etc/passwd",
        str(secret),
        str(root / "job" / ".." / ".." / "secret.txt"),
        str(link),  # a symlink inside the folder pointing out of it
        "job/0.txt",  # relative: resolved against the server's working directory
        str(root),  # the folder itself
        str(inside) + "\x00",
        None,
        12,
    ):
        with pytest.raises(TfcnnInputError, match="did not arrive; upload it again") as err:
            logic.read_upload([{"name": "x", "datapath": datapath}], 100, "target", root)
        assert "AT5G99999" not in str(err.value)
    # Without a known upload folder nothing is read at all.
    with pytest.raises(TfcnnInputError, match="did not arrive"):
        logic.read_upload([{"name": "a", "datapath": str(inside)}], 100, "target", None)
    for bad in ("not a list", [["a"]]):
        with pytest.raises(TfcnnInputError, match="did not arrive"):
            logic.read_upload(bad, 100, "target", root)


def test_the_cache_loads_only_offered_models_and_shares_one_entry_per_real_path(
    home, model_dir, tmp_path
):
    choices = logic.model_choices(str(model_dir))
    cache = logic.PredictorCache(choices, max_models=1)
    assert set(cache.keys) == {c.key for c in choices}
    # Unlisted values get one message whatever exists on the server (no existence oracle).
    messages = set()
    for key in (
        str(tmp_path),  # a folder
        str(model_dir / "model.json"),  # a file
        str(tmp_path / "missing"),
        "../../../../etc",
        str(model_dir) + "/",  # another spelling of an offered directory
        None,
        ["synthetic-agi"],
    ):
        with pytest.raises(TfcnnInputError) as err:
            cache.get(key)
        messages.add(str(err.value))
    assert messages == {"unknown model: choose one of the models listed in the 'Model' selector."}
    out = logic.run_query(cache, "../../../../etc", ["AT1G01010"], None, QueryLimits())
    assert out.error.startswith("unknown model")
    # The same model under two offered keys (the directory and its registered name).
    a = cache.get(str(model_dir))
    assert cache.get(str(model_dir)) is a and len(cache) == 1
    cache.get("synthetic-agi")
    assert len(cache) == 1  # bounded: the least recently used entry was dropped


def test_gather_ids_combines_typed_and_uploaded_ids_and_refuses_huge_lists():
    assert logic.gather_ids("a, b", ["c"], 10, "regulator") == ["a", "b", "c"]
    assert logic.gather_ids(None, [], 10, "target") == []
    assert len(logic.gather_ids(" ".join(["x"] * 20), [], 10, "regulator")) == 20  # 2 x cap
    with pytest.raises(TfcnnInputError, match="21 regulator IDs given; at most 10"):
        logic.gather_ids(" ".join(["x"] * 21), [], 10, "regulator")
    # 100,000 pasted IDs, with the served defaults: refused with the limit, before lookup.
    pasted = "\n".join(f"AT1G{i:05d}" for i in range(100_000))
    for what, cap in (("regulator", 2_000), ("target", 25_000)):
        with pytest.raises(TfcnnInputError) as info:
            logic.gather_ids(pasted, [], cap, what)
        assert f"100,000 {what} IDs given; at most {cap:,} {what}s are scored per query" in str(
            info.value
        )
    with pytest.raises(TfcnnInputError, match="characters; at most 4,000,000 are accepted"):
        logic.gather_ids("A" * (logic.MAX_TEXT_CHARS + 1), [], 2_000, "regulator")


def test_run_query_returns_a_prediction_or_a_message(cache, monkeypatch):
    g = genes(cache)
    ok = logic.run_query(cache, "synthetic-agi", [g[0], "nope"], g[1:4], QueryLimits(5, 5))
    assert ok.error is None and len(ok.prediction.table) == 3
    assert [i.query_id for i in ok.prediction.issues] == ["nope"]
    assert "3 pairs scored: 1 regulator(s) x 3 target(s)." == logic.summary_text(ok.prediction)
    # Limits, unusable IDs, missing model, nothing typed: messages, not exceptions.
    msg = logic.run_query(cache, "synthetic-agi", g[:3], None, QueryLimits(2, 500)).error
    assert "3 regulators in this query; at most 2" in msg
    assert (
        "none of the 1 regulator"
        in logic.run_query(cache, "synthetic-agi", ["x"], None, QueryLimits()).error
    )
    assert logic.run_query(cache, "no-such", g[:1], None, QueryLimits()).error.startswith(
        "unknown model"
    )
    assert "no model selected" in logic.run_query(cache, "", g[:1], None, QueryLimits()).error
    assert (
        "at least one regulator"
        in logic.run_query(cache, "synthetic-agi", [], None, QueryLimits()).error
    )

    def broken(key):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(cache, "get", broken)
    err = logic.run_query(cache, "synthetic-agi", g[:1], None, QueryLimits()).error
    assert err == "internal error (RuntimeError); the details are in the server's log."


def test_display_table_caps_rows_hides_redundant_columns_and_rounds(cache):
    g = genes(cache)
    p = cache.get("synthetic-agi").predict(g[:2], None)
    view = logic.display_table(p.table, rows=7)
    assert len(view) == 7
    # AGI model: no AGI column repeating the IDs; the probesets are informative.
    assert "regulator AGI" not in view and "regulator probeset" in view
    # The probability next to the IDs (a phone shows the first three columns).
    assert list(view.columns[:3]) == ["regulator (TF)", "target", "probability"]
    # Consistent decimals: probabilities with 3, percentages as whole numbers.
    assert all(len(v.split(".")[1]) == 3 for v in view.probability)
    np.testing.assert_allclose(
        view.probability.astype(float), p.table.probability.head(7), atol=5e-4
    )
    percent = view["TF scores high with (% of genes)"]
    assert (percent.astype(float) == (p.table.regulator_base_rate.head(7) * 100).round()).all()
    # Every column shown is explained in plain words in the legend.
    assert [c for c, _ in logic.legend_items(view)] == list(view.columns)
    assert "the 5,000 highest are shown" not in logic.summary_text(p)


def test_symbols_are_shown_beside_the_ids(cache):
    """The synthetic genes carry real AGI names; those AtRegNet names get their symbol."""
    from tfcnn.io.symbols import symbols

    predictor = cache.get("synthetic-agi")
    named = [g for g in predictor.genes if g in symbols()]
    assert named, "no synthetic gene is named after a locus with a symbol"
    p = predictor.predict(named[:1], None)
    assert set(p.table.regulator_symbol) == {symbols()[named[0]]}
    view = logic.display_table(p.table)
    assert set(view["regulator (TF)"]) == {f"{named[0]} ({symbols()[named[0]]})"}
    # Typed as a symbol, in any case, it is scored as its AGI code.
    by_symbol = logic.run_query(
        cache, "synthetic-agi", [symbols()[named[0]].lower()], None, QueryLimits()
    )
    assert by_symbol.error is None and set(by_symbol.prediction.table.regulator) == {named[0]}


def test_ambiguous_symbols_are_refused_naming_the_candidates(cache):
    out = logic.run_query(cache, "synthetic-agi", ["PIF4"], None, QueryLimits())
    assert "'PIF4' is ambiguous" in out.error and "AT2G43010" in out.error


def test_training_pairs_are_marked_memorised_and_counted(cache, model_dir):
    from tests.predict_helpers import planted_pairs

    tf, target = sorted(planted_pairs(model_dir.parent))[0]
    p = cache.get("synthetic-agi").predict([tf], None)
    view = logic.display_table(p.table)
    marked = set(view.loc[view["in training"] == "training pair (memorised)", "target"])
    trained = p.table.pair_in_training.str.startswith("train ")
    assert len(marked) == int(trained.sum()) > 0
    assert p.n_training_pairs == int(trained.sum())  # counted as the table was built
    note = logic.training_note(p)
    assert (
        note.startswith(f"{int(trained.sum()):,} of these") and "memorised, not predicted" in note
    )


def test_the_shortcut_flag_names_a_tf_that_scores_most_genes_high(cache):
    p = cache.get("synthetic-agi").predict(genes(cache)[:3], None)
    p.table["regulator_scores_most_genes_high"] = p.table.regulator == p.table.regulator.iloc[0]
    p.table["regulator_base_rate"] = 0.98
    flags = logic.shortcut_flags(p)
    assert len(flags) == 1 and p.table.regulator.iloc[0] in flags[0]
    assert "98% of all the genes" in flags[0]
    assert "reading the TF's identity, not the pair" in flags[0]
    p.table["regulator_scores_most_genes_high"] = False
    assert logic.shortcut_flags(p) == []


def test_the_header_gives_the_honest_figure_and_a_caveat_beside_the_headline(home):
    choice = next(c for c in logic.model_choices() if c.key == "synthetic-agi")
    text = logic.figures_text(choice)
    assert text["headline"].startswith(f"held-out test AUROC {choice.test_auroc:.3f}")
    assert f"within-target AUROC {choice.within_target:.3f}" in text["honest"]
    assert "without reading the pair" in text["caveat"]
    assert text["verdict"].startswith(("no sign", "some sign"))
    shortcut = dataclasses.replace(
        choice,
        protocol="random split, random negatives",
        versus_control=("tf_only", -0.02, -0.04, -0.01),
    )
    text = logic.figures_text(shortcut)
    assert "shortcut-prone protocol" in text["caveat"]
    assert text["verdict"].startswith("no sign: a control that never reads the pair (TF only)")
    assert "does better (-0.020, 95% CI -0.040 to -0.010)" in text["verdict"]
    spans = dataclasses.replace(shortcut, versus_control=("target_only", 0.02, -0.1, 0.2))
    assert "cannot be told apart from a control" in logic.figures_text(spans)["verdict"]
    assert "no honest figure" in logic._choice(
        "m", Path("."), "user", "", 0.9, {"genes": ["a"], "samples": ["s"]}
    ).label.replace("pooled AUROC 0.900, no honest figure", "no honest figure")
    covered = logic.coverage_text(choice)
    assert f"only these {choice.n_genes:,} genes can be scored" in covered


def test_the_published_model_reports_its_samples_not_zero(home):
    published = next(c for c in logic.model_choices() if c.key == "published-2019")
    assert published.n_samples == 232 and not published.usable
    assert "expects 232 samples" in logic.coverage_text(published)


def _fake_demo(root: Path, model_dir: Path, run: str = "demo") -> Path:
    models = root / "results" / run / "models"
    for name in ("random-split__random-negatives", "tf-holdout-split__tf-matched-negatives"):
        shutil.copytree(model_dir, models / name)
    return models


def test_serve_offers_the_newest_demo_runs_models_strictest_first(home, model_dir, tmp_path):
    assert logic.demo_model_dirs(tmp_path / "results") == []
    _fake_demo(tmp_path, model_dir)
    newest = _fake_demo(tmp_path, model_dir, "demo-2")
    found = logic.demo_model_dirs(tmp_path / "results")
    assert [d.name for d in found] == [
        "tf-holdout-split__tf-matched-negatives",
        "random-split__random-negatives",
    ]
    assert all(d.parent == newest for d in found)
    choices = logic.model_choices(results=tmp_path / "results")
    demo = [c for c in choices if c.origin.startswith("trained by tfcnn demo")]
    assert [c.key for c in demo] == [str(d) for d in found] and all(c.usable for c in demo)
    assert logic.model_choices(results=None) == [c for c in choices if c not in demo]


def test_serve_finds_the_demo_models_or_points_at_them(tmp_path, monkeypatch, model_dir):
    """Right after `make demo`: the demo's models, preselected; else a pointer to them."""
    import uvicorn
    from typer.testing import CliRunner

    from tfcnn.apps.cli import app

    monkeypatch.setenv("TFCNN_HOME", str(tmp_path / "empty-home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    runner = CliRunner()
    bare = runner.invoke(app, ["serve", "--port", str(_free_port())])
    assert bare.exit_code == 0, bare.output
    flat = " ".join(bare.output.split())
    assert "No model offered here can score" in flat
    assert "--model results/demo/models/tf-holdout-split__tf-matched-negatives" in flat
    choices = logic.model_choices()
    assert logic.no_usable_model_hint(choices) and logic.default_choice(choices) == "published-2019"
    _fake_demo(tmp_path, model_dir)
    choices = logic.model_choices()
    assert logic.default_choice(choices) == (
        "results/demo/models/tf-holdout-split__tf-matched-negatives"
    )
    assert logic.no_usable_model_hint(choices) is None
    ready = runner.invoke(app, ["serve", "--port", str(_free_port())])
    assert ready.exit_code == 0 and "No model offered" not in ready.output


def test_serve_needs_the_web_extra(monkeypatch):
    from typer.testing import CliRunner

    from tfcnn import extras
    from tfcnn.apps.cli import app

    real = extras.importlib.import_module

    def missing(name, *args):
        if name == "shiny":
            raise ImportError("No module named 'shiny'")
        return real(name, *args)

    monkeypatch.setattr(extras.importlib, "import_module", missing)
    out = CliRunner().invoke(app, ["serve"])
    assert out.exit_code == 2 and "pip install 'tfcnn[web]'" in " ".join(out.output.split())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_downloads_hold_the_full_table(cache):
    g = genes(cache)
    p = cache.get("synthetic-agi").predict(g[:2], g[2:6])
    assert logic.csv_bytes(p).decode() == to_text(p.table, "csv")
    book = pd.read_excel(io.BytesIO(logic.xlsx_bytes(p)), sheet_name=None)
    assert list(book["predictions"].columns) == list(COLUMNS)
    assert len(book["predictions"]) == len(p.table)


def test_figures_with_and_without_the_explanation_module(cache, monkeypatch):
    predictor = cache.get("synthetic-agi")
    g = predictor.genes
    p = predictor.predict(g[:2], g[2:6])
    fig = logic.distribution_figure(p, predictor.distribution)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[-1] == "this query (8 pairs)" and labels[0].startswith("training negatives")
    fig, note = logic.pair_figure(predictor, g[0], g[3], 0.5)
    assert note is None and "activation map" in " ".join(
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    )

    def broken(*args, **kwargs):
        raise ValueError("no window")

    monkeypatch.setattr(logic, "explain_pair", broken)
    fig, note = logic.pair_figure(predictor, g[0], g[3], 0.5)
    assert "activation window unavailable (ValueError)" in note
    np.testing.assert_allclose(
        fig.axes[0].lines[0].get_ydata(), predictor.pair_profiles(g[0], g[3])[0]
    )


def test_page_escapes_text_and_states_the_limits(home):
    page = str(build_ui(logic.AppSettings(max_regulators=7), {"m": "<b>bold</b> model"}, "m"))
    assert "&lt;b&gt;bold&lt;/b&gt; model" in page and "<b>bold</b>" not in page
    assert "At most 7 regulators x 25,000 targets and 1,000,000 pairs per query" in page
    app = create_app(logic.AppSettings())
    assert isinstance(app, UploadLimit) and app.app.sanitize_errors is True


def test_upload_guard_refuses_large_bodies_before_the_app_sees_them():
    seen = []

    async def inner(scope, receive, send):
        seen.append((scope["path"], (await receive())["body"]))

    guard = UploadLimit(inner, max_bytes=10)
    sent = []

    async def send(msg):
        sent.append(msg)

    def chunks(*bodies: bytes):
        queue = [
            {"type": "http.request", "body": b, "more_body": i < len(bodies) - 1}
            for i, b in enumerate(bodies)
        ]

        async def receive():
            return queue.pop(0)

        return receive

    def scope(length: int | None, path="/session/abc/upload/job1"):
        headers = [] if length is None else [(b"content-length", str(length).encode())]
        return {"type": "http", "method": "POST", "path": path, "headers": headers}

    asyncio.run(guard(scope(20), chunks(b"x" * 20), send))  # declared too long
    assert sent[-1]["body"] and sent[-2]["status"] == 413 and seen == []
    asyncio.run(guard(scope(5), chunks(b"x" * 20), send))  # a false length
    asyncio.run(guard(scope(None), chunks(b"x" * 6, b"x" * 6), send))  # chunked, no length
    assert [m["status"] for m in sent if "status" in m] == [413, 413, 413] and seen == []
    asyncio.run(guard(scope(None), chunks(b"x" * 4, b"y" * 4), send))  # fits: replayed whole
    asyncio.run(guard(scope(20, path="/other"), chunks(b"z" * 20), send))  # not an upload
    assert seen == [("/session/abc/upload/job1", b"xxxxyyyy"), ("/other", b"z" * 20)]


# -- bad inputs, logic level -----------------------------------------------------------------
def _upload(tmp_path: Path, name: str, content: bytes) -> list[dict]:
    """A file as Shiny stores an upload; ``tmp_path`` stands for the upload folder."""
    f = tmp_path / f"upload_{len(list(tmp_path.iterdir()))}"
    f.write_bytes(content)
    return [{"name": name, "size": len(content), "datapath": str(f)}]


def _xlsx_bytes() -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"gene": ["AT1G01010", "AT1G01020"]}).to_excel(buf, index=False)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "'ids.txt' holds no IDs (only blank lines or # comments)"),
        (b"\n  \n# only a comment\n", "'ids.txt' holds no IDs (only blank lines or # comments)"),
        (_xlsx_bytes(), "'ids.txt' is an Excel workbook (.xlsx) or another zip archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "an old-style Excel (.xls)"),
        (gzip.compress(b"AT1G01010\n"), "'ids.txt' is a gzip-compressed file"),
        (b"AT1G01010\n\x00\x01\x02binary", "is binary (a NUL byte at byte 11), not a text file"),
        (bytes(range(1, 32)) * 20, "is binary (520 control characters), not a text file"),
    ],
)
def test_read_upload_refuses_files_that_hold_no_ids_with_the_file_name(tmp_path, content, message):
    info = _upload(tmp_path, "ids.txt", content)
    with pytest.raises(TfcnnInputError) as err:
        logic.read_upload(info, 1_000_000, "target", tmp_path)
    assert message in str(err.value)
    assert str(err.value).startswith("target file 'ids.txt'")


def test_read_upload_reads_latin1_and_utf16_text(tmp_path):
    latin1 = "# liste de g\xe8nes\nAT1G01010\nAT1G01020\n".encode("latin-1")
    assert logic.read_upload(_upload(tmp_path, "a.txt", latin1), 10_000, "regulator", tmp_path) == [
        "AT1G01010",
        "AT1G01020",
    ]
    utf16 = "AT1G01010\tAT1G01020\r\n".encode("utf-16")  # what Excel's 'Unicode text' writes
    assert logic.read_upload(_upload(tmp_path, "b.txt", utf16), 10_000, "regulator", tmp_path) == [
        "AT1G01010",
        "AT1G01020",
    ]


def test_ids_in_the_wrong_namespace_unknown_and_duplicates_are_reported(cache):
    predictor = cache.get("synthetic-agi")
    g = predictor.genes
    probeset = predictor.id_map.agi_to_probeset[g[1]]  # the same gene, as a probeset
    regs = [g[0], g[0].lower(), probeset, "837345", "Solyc01g005000", "AT5G99999", g[1]]
    out = logic.run_query(cache, "synthetic-agi", regs, g[5:8], QueryLimits(), max_pairs=100)
    assert out.error is None
    p = out.prediction
    assert p.n_regulators == 2 and len(p.table) == 6
    problems = {(i.query_id, i.problem) for i in p.issues}
    assert (g[0].lower(), "duplicate") in problems
    assert (g[1], "duplicate") in problems  # after its probeset, which was scored
    assert ("837345", "unknown") in problems and ("Solyc01g005000", "unknown") in problems
    detail = {i.query_id: i.detail for i in p.issues}
    assert "not an AGI code or ATH1 probeset" in detail["837345"]
    # All unknown: one message naming the first IDs and how many more.
    bad = [f"NOT_A_GENE_{i}" for i in range(12)]
    err = logic.run_query(cache, "synthetic-agi", bad, None, QueryLimits()).error
    assert "none of the 12 regulator ID(s) can be scored: 'NOT_A_GENE_0': unknown" in err
    assert "and 7 more" in err


def test_pair_cap_refuses_large_queries_before_scoring(cache, monkeypatch):
    g = genes(cache)
    predictor = cache.get("synthetic-agi")
    monkeypatch.setattr(
        predictor, "score_grid", lambda *a, **k: pytest.fail("scored past the pair cap")
    )
    msg = logic.run_query(cache, "synthetic-agi", g[:10], None, QueryLimits(), max_pairs=500).error
    assert "10 regulators x 156 targets (no targets given: every gene of the model) = 1,560" in msg
    assert "at most 500 pairs per query" in msg
    # Duplicates and unknown IDs do not count: 30 tokens, 5 distinct genes x 100 targets.
    regs = g[:5] * 5 + ["x"] * 5
    msg = logic.run_query(cache, "synthetic-agi", regs, g[:101], QueryLimits(), max_pairs=499)
    assert "5 regulators x 101 targets = 505 pairs" in msg.error


def test_unused_ids_and_xlsx_are_capped_for_the_page(cache, monkeypatch):
    g = genes(cache)
    p = cache.get("synthetic-agi").predict(g[:1] + [f"x{i}" for i in range(250)], g[1:4])
    shown, more = logic.unused_for_display(p)
    assert len(shown) == logic.DISPLAY_ISSUES == 200 and more == 50
    assert logic.offers_xlsx(p)
    monkeypatch.setattr(logic, "XLSX_WEB_MAX_ROWS", 2)
    assert not logic.offers_xlsx(p)
    with pytest.raises(TfcnnInputError, match="3 rows: the web app writes XLSX files of at most 2"):
        logic.xlsx_bytes(p)


def test_models_without_a_matrix_are_marked_and_not_preselected(home):
    choices = logic.model_choices()
    published = next(c for c in choices if c.key == "published-2019")
    assert not published.usable and "no expression matrix" in published.label
    assert next(c for c in choices if c.key == "synthetic-agi").usable
    assert logic.default_choice(choices) == "synthetic-agi"
    assert logic.default_choice(choices, "published-2019") == "published-2019"
    assert logic.default_choice([]) is None
    # Chosen anyway: a message for the page, not the CLI's '--expression' advice alone.
    cache = logic.PredictorCache(choices)
    out = logic.run_query(cache, "published-2019", ["AT1G1"], None, QueryLimits())
    assert "published-2019 carries no expression matrix, so the web app cannot score" in out.error
    assert "choose another model (synthetic-agi)" in out.error
    # With no model that can score, it never says "choose another model".
    alone = logic.PredictorCache([c for c in choices if c.key == "published-2019"])
    out = logic.run_query(alone, "published-2019", ["AT1G1"], None, QueryLimits())
    assert "choose another" not in out.error and "run 'make demo'" in out.error


def test_env_settings_refuse_bad_numbers(monkeypatch):
    monkeypatch.setenv("TFCNN_SERVE_MAX_PAIRS", "2_000")
    assert logic.env_settings().max_pairs == 2_000
    monkeypatch.setenv("TFCNN_SERVE_MAX_PAIRS", "lots")
    with pytest.raises(TfcnnInputError, match="TFCNN_SERVE_MAX_PAIRS='lots': give a whole"):
        logic.env_settings()


# -- the real server, driven over its websocket as a browser does ----------------------------
LIMITS = {"max_regulators": 20, "max_targets": 100, "max_pairs": 1_000, "max_upload_bytes": 5_000}


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_dir):
    """(url, genes): the app under uvicorn in a thread, with the synthetic model."""
    import uvicorn

    home = tmp_path_factory.mktemp("served_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TFCNN_HOME", str(home))
        register_model(model_dir, "synthetic-agi")
        app = create_app(logic.AppSettings(default_model="synthetic-agi", **LIMITS))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        srv = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
        )
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not srv.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.05)
        try:
            cache = logic.PredictorCache(logic.model_choices())
            yield f"http://127.0.0.1:{port}/", cache.get("synthetic-agi").genes
        finally:
            srv.should_exit = True
            thread.join(timeout=10)


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_server_refuses_100000_pasted_ids_and_the_session_goes_on(server):
    from tests.wsclient import ShinySession

    url, g = server
    pasted = "\n".join(f"AT{1 + i % 5}G{i:05d}" for i in range(100_000))

    async def go():
        async with ShinySession(url) as s:
            t0 = time.monotonic()
            bad_regs = await s.query(pasted, "")
            bad_tgts = await s.query(g[0], pasted)
            refused_in = time.monotonic() - t0
            ok = await s.query(f"{g[0]}, {g[1]}", " ".join(g[10:13]))
        return bad_regs, bad_tgts, refused_in, ok

    bad_regs, bad_tgts, refused_in, ok = _run(go())
    assert not bad_regs.ok and not bad_tgts.ok
    assert "100,000 regulator IDs given; at most 20 regulators are scored" in bad_regs.message
    assert "100,000 target IDs given; at most 100 targets are scored" in bad_tgts.message
    print(f"two 100,000-ID pastes refused in {refused_in:.2f} s")
    assert ok.ok and ok.message.startswith("6 pairs scored: 2 regulator(s) x 3 target(s).")
    assert ok.table_rows == 6


def test_server_escapes_markup_and_never_evaluates_ids(server, tmp_path):
    from tests.wsclient import ShinySession

    url, g = server
    marker = tmp_path / "evaluated"
    evil = [
        "<script>alert(1)</script>",
        "<img/src=x/onerror=alert(2)>",
        f"__import__('os').system('touch {marker}')",
        "{{7*7}}",
        "${7*7}",
    ]

    async def go():
        async with ShinySession(url) as s:
            listed = await s.query(", ".join([g[0], *evil]), g[5])
            refused = await s.query(" ".join(evil), g[5])
        return listed, refused

    listed, refused = _run(go())
    assert listed.ok and "<script>" not in listed.unused_html and "<img" not in listed.unused_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listed.unused_html
    assert "&lt;img/src=x/onerror=alert(2)&gt;" in listed.unused_html
    assert "{{7*7}}" in listed.unused_html and "49" not in listed.unused_html
    assert not refused.ok and "'<script>alert(1)</script>': unknown" in refused.message
    assert not marker.exists()


def test_server_refuses_bad_uploads_with_messages(server):
    from tests.wsclient import ShinySession

    url, g = server

    async def go():
        async with ShinySession(url) as s:
            out = {}
            assert await s.upload("targets_file", "empty.txt", b"") == 200
            out["empty"] = await s.query(g[0], "")
            assert await s.upload("targets_file", "book.txt", _xlsx_bytes()) == 200
            out["xlsx"] = await s.query(g[0], "")
            out["too_big"] = await s.upload("targets_file", "big.txt", b"A" * 6_000)
            assert await s.upload("targets_file", "ok.txt", "\n".join(g[3:6]).encode()) == 200
            out["ok"] = await s.query(g[0], "")
        return out

    out = _run(go())
    empty = "target file 'empty.txt' holds no IDs (only blank lines or # comments)"
    assert empty in out["empty"].message
    assert "target file 'book.txt' is an Excel workbook (.xlsx)" in out["xlsx"].message
    assert out["too_big"] == 413
    assert out["ok"].ok and out["ok"].message.startswith("3 pairs scored: 1 regulator(s) x 3")


def test_server_downloads_only_the_sessions_own_results(server):
    from tests.wsclient import ShinySession

    url, g = server

    async def go():
        async with ShinySession(url) as a, ShinySession(url) as b:
            res_a = await a.query(g[0], " ".join(g[10:14]))
            await b.query(g[1], " ".join(g[20:22]))
            got = {"a": await a.download("download_csv"), "b": await b.download("download_csv")}
            link_a = res_a.download_paths["download_csv"]
            sid_a = a.session_id
            for name, path in {
                "a_link_from_b": link_a,  # session A's link, requested by anyone: A's data
                "unknown_session": link_a.replace(sid_a, "0" * len(sid_a)),
                "traversal": f"session/{sid_a}/download/../../../../etc/passwd",
                "encoded_traversal": f"session/{sid_a}/download/..%2F..%2Fetc%2Fpasswd",
                "not_a_download": f"session/{sid_a}/download/results_table",
                "model_file": f"session/{sid_a}/download/weights.safetensors",
            }.items():
                got[name] = await asyncio.to_thread(b.get, path)
        got["closed_session"] = await asyncio.to_thread(ShinySession(url).get, link_a)
        return got

    got = _run(go())
    csv_a = pd.read_csv(io.BytesIO(got["a"][1]))
    csv_b = pd.read_csv(io.BytesIO(got["b"][1]))
    assert set(csv_a.regulator) == {g[0]} and len(csv_a) == 4
    assert set(csv_b.regulator) == {g[1]} and len(csv_b) == 2
    assert got["a_link_from_b"] == got["a"]
    for name in ("unknown_session", "traversal", "encoded_traversal", "not_a_download"):
        assert got[name][0] == 404, name
    assert got["model_file"][0] == 404 and got["closed_session"][0] == 404


def test_closed_sessions_are_freed(server):
    """shiny 1.8's data frame cache kept every closed session alive (see release_data_frame)."""
    from tests.wsclient import ShinySession

    url, g = server

    async def go():
        for i in range(3):
            async with ShinySession(url) as s:
                assert (await s.query(g[i], " ".join(g[10:20]))).ok
        await asyncio.sleep(0.3)  # the server ends the sessions

    _run(go())
    gc.collect()
    alive = [o for o in gc.get_objects() if type(o) is Prediction]
    assert alive == []


# -- security, against the live server (issue: the app reads only what it offered) ---------
def test_server_never_reads_a_datapath_the_client_names(server, tmp_path):
    """Setting a file input's value by hand (not through Shiny's upload) reads nothing."""
    from tests.wsclient import ShinySession

    url, g = server
    secret = tmp_path / "secret.txt"
    secret.write_text(f"{g[7]}\nAT5G99999\nTOPSECRET\n")
    secret.chmod(0o600)

    async def go():
        out = {}
        async with ShinySession(url) as s:
            for name, path in (("passwd", "/etc/passwd"), ("secret", str(secret))):
                fake = [{"name": "ids.txt", "size": 10, "type": "text/plain", "datapath": path}]
                await s.set_inputs(targets_file=fake)
                out[name] = await s.query(g[0], "")
                out[name + "_csv"] = await s.download("download_csv") if out[name].ok else None
            # A real upload still works in the same session.
            assert await s.upload("targets_file", "ok.txt", "\n".join(g[3:5]).encode()) == 200
            out["ok"] = await s.query(g[0], "")
        return out

    out = _run(go())
    for name in ("passwd", "secret"):
        res = out[name]
        assert (
            not res.ok and res.message == "target file 'ids.txt' did not arrive; upload it again."
        )
        assert out[name + "_csv"] is None
        assert "root" not in (res.unused_html or "") and "TOPSECRET" not in (res.unused_html or "")
    assert out["ok"].ok and out["ok"].message.startswith("2 pairs scored")


def test_server_loads_only_the_models_it_offered(server, tmp_path, model_dir):
    """A client setting 'model' to a server path gets one message, whatever the path is."""
    from tests.wsclient import ShinySession

    url, g = server
    probes = {
        "existing_dir": str(tmp_path),
        "model_dir_unlisted": str(model_dir),
        "file": str(model_dir / "model.json"),
        "missing": str(tmp_path / "nope"),
        "traversal": "../../../../etc",
    }

    async def go():
        out = {}
        async with ShinySession(url) as s:
            for name, value in probes.items():
                await s.set_inputs(model=value)
                out[name] = await s.query(g[0], g[1])
            await s.set_inputs(model="synthetic-agi")
            out["offered"] = await s.query(g[0], g[1])
        return out

    out = _run(go())
    messages = {out[name].message for name in probes}
    assert messages == {"unknown model: choose one of the models listed in the 'Model' selector."}
    assert out["offered"].ok


def test_serve_refuses_remote_binds_unless_asked_and_then_warns(home, monkeypatch):
    """The app has no login: an address other machines can reach needs --allow-remote."""
    import uvicorn
    from typer.testing import CliRunner

    from tfcnn.apps.cli import app
    from tfcnn.apps.commands.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("no-such-host.invalid")
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))
    runner = CliRunner()
    refused = runner.invoke(app, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and started == []
    assert "has no login" in refused.output and "--allow-remote" in refused.output
    allowed = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--allow-remote"])
    assert allowed.exit_code == 0, allowed.output
    assert started == [{"host": "0.0.0.0", "port": 8000, "log_level": "warning"}]
    assert "warning:" in allowed.output and "no login" in allowed.output
    local = runner.invoke(app, ["serve"])
    assert local.exit_code == 0 and "warning" not in local.output


def test_serve_refuses_a_busy_port_and_bad_sizes_before_printing_a_url(home, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from tfcnn.apps.cli import app

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    runner = CliRunner()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = runner.invoke(app, ["serve", "--port", str(port)])
    assert out.exit_code == 2 and f"port {port} on 127.0.0.1 is in use" in out.output
    assert "http://" not in out.output
    for value in ("nan", "inf", "0", "-1"):
        bad = runner.invoke(app, ["serve", "--max-upload-mb", value])
        assert bad.exit_code == 2 and "--max-upload-mb must be a number" in bad.output, value


def test_fast_distribution_plot_is_the_full_drawing(cache, monkeypatch):
    """The web app's distribution plot (a cached picture of everything but the query's
    bars, plus the bars) looks like the whole figure drawn with the same y axis, at the
    page's pixel ratios and on a phone; the picture is drawn once per kind."""
    from PIL import Image

    predictor = cache.get("synthetic-agi")
    g = predictor.genes
    p = predictor.predict(g[:3], g[3:40])
    plots = logic.DistributionPlots()
    drawn = []
    original = logic.DistributionPlots._draw_background
    monkeypatch.setattr(
        logic.DistributionPlots,
        "_draw_background",
        staticmethod(lambda *a: drawn.append(a) or original(*a)),
    )

    def pixels(fig, ratio):  # saved as Shiny's render.plot saves it
        dpi = fig.get_dpi()
        fig.set_dpi(dpi * ratio)
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=dpi * ratio)
        return np.asarray(Image.open(out).convert("RGB")).astype(int)

    query = logic._shares(p.table["probability"].to_numpy())
    for size in ((958, 300), (360, 300)):
        for ratio in (1, 2):
            fast = pixels(plots.figure(p, predictor.distribution, size, ratio), ratio)
            top = plots.figure(p, predictor.distribution, size, ratio).axes[0].get_ylim()[1]
            full = logic._distribution_axes(predictor.distribution, size, query, "this query", top)
            whole = pixels(full, ratio)
            assert fast.shape == whole.shape
            off = np.abs(fast - whole).max(axis=-1)
            assert (off > 8).mean() < 0.01, (size, ratio, (off > 8).mean())
    assert len(drawn) == 4  # two sizes x two ratios, each drawn once
