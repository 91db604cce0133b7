"""The web app's server logic, without a browser (tfcnn.webapp.logic and the ASGI guard)."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pandas as pd
import pytest

from tests.predict_helpers import train_synthetic_model
from tfcnn.errors import TfcnnInputError
from tfcnn.predict import COLUMNS, QueryLimits, to_text
from tfcnn.registry import register_model
from tfcnn.webapp import logic
from tfcnn.webapp.app import UploadLimit, build_ui, create_app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_synthetic_model(tmp_path_factory.mktemp("web_model"), agi=True)


@pytest.fixture()
def home(tmp_path, monkeypatch, model_dir):
    """A TFCNN_HOME holding one registered synthetic model, 'synthetic-agi'."""
    monkeypatch.setenv("TFCNN_HOME", str(tmp_path / "home"))
    register_model(model_dir, "synthetic-agi")
    return tmp_path / "home"


@pytest.fixture()
def cache(home):
    return logic.PredictorCache()


def genes(cache) -> list[str]:
    return cache.get("synthetic-agi").genes


def test_model_choices_list_registered_models_with_provenance_and_auroc(home, model_dir):
    choices = logic.model_choices()
    mine = [c for c in choices if c.key == "synthetic-agi"]
    assert len(mine) == 1
    c = mine[0]
    assert c.origin == "user" and c.n_samples == 16 and c.n_genes == 156
    assert c.test_auroc is not None and f"test AUROC {c.test_auroc:.3f}" in c.label
    assert "synthetic_expression.tsv" in c.description
    # A directory given to `tfcnn serve --model` is offered too, first.
    assert logic.model_choices(str(model_dir))[0].key == str(model_dir)
    with pytest.raises(TfcnnInputError, match="neither a registered model nor a model directory"):
        logic.model_choices("no-such-model")


def test_read_upload_reads_ids_and_caps_the_size(tmp_path):
    f = tmp_path / "0.txt"
    f.write_text("AT1G01010\nAT1G01020, AT1G01030\n", encoding="utf-8")
    info = [{"name": "regs.txt", "size": f.stat().st_size, "datapath": str(f)}]
    assert logic.read_upload(info, 1_000, "regulator") == ["AT1G01010", "AT1G01020", "AT1G01030"]
    assert logic.read_upload(None, 1_000, "regulator") == []
    with pytest.raises(TfcnnInputError, match=r"'regs.txt' is 0.0 MB; files of at most"):
        logic.read_upload(info, 10, "regulator")
    lying = [{"name": "regs.txt", "size": 1, "datapath": str(f)}]  # size checked on disk too
    with pytest.raises(TfcnnInputError, match="files of at most"):
        logic.read_upload(lying, 10, "regulator")
    gone = [{"name": "x.txt", "size": 1, "datapath": str(tmp_path / "gone")}]
    with pytest.raises(TfcnnInputError, match="did not arrive"):
        logic.read_upload(gone, 10, "regulator")


def test_gather_ids_combines_typed_and_uploaded_ids_and_refuses_huge_lists():
    assert logic.gather_ids("a, b", ["c"], 10, "regulator") == ["a", "b", "c"]
    assert logic.gather_ids(None, [], 10, "target") == []
    with pytest.raises(TfcnnInputError, match="41 regulator IDs given; at most 10"):
        logic.gather_ids(" ".join(["x"] * 41), [], 10, "regulator")


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
    assert "no-such" in logic.run_query(cache, "no-such", g[:1], None, QueryLimits()).error
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
    # AGI model: the *_agi columns repeat the IDs, the probeset columns are informative.
    assert "regulator_agi" not in view and "regulator_probeset" in view
    assert np.allclose(view.probability, p.table.probability.head(7), atol=5e-5)
    assert (view.probability == view.probability.round(4)).all()
    assert "the 5,000 highest are shown" not in logic.summary_text(p)


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
    monkeypatch.setattr(logic, "_explain_module", lambda: None)
    fig, note = logic.pair_figure(predictor, g[0], g[3], 0.5)
    assert "tfcnn.explain" in note
    np.testing.assert_allclose(
        fig.axes[0].lines[0].get_ydata(), predictor.pair_profiles(g[0], g[3])[0]
    )

    class Broken:
        @staticmethod
        def explain_pair(*args):
            raise ValueError("no window")

        plot_pair = None

    monkeypatch.setattr(logic, "_explain_module", lambda: Broken)
    fig, note = logic.pair_figure(predictor, g[0], g[3], 0.5)
    assert "activation window unavailable (ValueError)" in note


def test_page_escapes_text_and_states_the_limits(home):
    page = str(build_ui(logic.AppSettings(max_regulators=7), {"m": "<b>bold</b> model"}, "m"))
    assert "&lt;b&gt;bold&lt;/b&gt; model" in page and "<b>bold</b>" not in page
    assert "At most 7 regulators x 25,000 targets per query" in page
    app = create_app(logic.AppSettings())
    assert isinstance(app, UploadLimit) and app.app.sanitize_errors is True


def test_upload_guard_refuses_large_bodies_before_the_app_sees_them():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["path"])
        await receive()

    guard = UploadLimit(inner, max_bytes=10)
    sent = []

    async def send(msg):
        sent.append(msg)

    async def receive():
        return {"type": "http.request", "body": b"x" * 20, "more_body": False}

    def scope(length: int, path="/session/abc/upload/job1"):
        return {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [(b"content-length", str(length).encode())],
        }

    asyncio.run(guard(scope(20), receive, send))
    assert sent[0]["status"] == 413 and seen == []
    with pytest.raises(TfcnnInputError):  # no (or a false) length: counted as it streams
        asyncio.run(guard(scope(5), receive, send))
    asyncio.run(guard(scope(20, path="/other"), receive, send))
    assert seen == ["/session/abc/upload/job1", "/other"]
