"""The two-tower pair model (issue 15) on SYNTHETIC data made here: the estimator protocol,
determinism, model files, the fast scorer, the prior blend, regulon expansion, explanations
and the command line.

Synthetic data: ``synthetic_tf_NN`` profiles are random; each ``synthetic_gene_NNNN`` is
the sum of two random TFs' profiles plus noise, and those two TFs are its regulators. The
relation is in the pair of profiles, and many TFs share each target, so exactly
degree-matched negatives exist within every split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score

from tests.test_cli import ok, run, user_error
from tfcnn import api
from tfcnn.errors import ModelFormatError, TfcnnInputError
from tfcnn.evaluation.ranking import grouped_auroc
from tfcnn.evaluation.regulon import evaluate_regulon, regulon_folds
from tfcnn.io.expression import from_dataframe
from tfcnn.io.interactions import from_pairs
from tfcnn.model import PairCNN, TwoTower
from tfcnn.model.files import load_model
from tfcnn.model.prior import TargetPrior, model_prior, target_frequency
from tfcnn.model.two_tower import TwoTowerConfig, profile_ids
from tfcnn.pairs import PairSet, build_pair_set

SMALL = dict(hidden=32, embed_dim=8, head_hidden=16, max_epochs=6, min_epochs=2, n_seeds=2)


def shared_targets(
    n_tfs: int = 60, n_targets: int = 400, n_samples: int = 30, noise: float = 0.5, seed: int = 0
):
    """SYNTHETIC matrix and pairs: each target is the sum of two TFs' profiles + noise."""
    rng = np.random.default_rng(seed)
    tfs = [f"synthetic_tf_{i:02d}" for i in range(n_tfs)]
    genes = [f"synthetic_gene_{i:04d}" for i in range(n_targets)]
    tf_profiles = rng.standard_normal((n_tfs, n_samples))
    rows, pairs = [], []
    for g in range(n_targets):
        chosen = rng.choice(n_tfs, 2, replace=False)
        rows.append(
            tf_profiles[chosen].sum(0) / np.sqrt(2) + noise * rng.standard_normal(n_samples)
        )
        pairs += [(tfs[t], genes[g]) for t in chosen]
    values = np.vstack([tf_profiles, np.array(rows)]) + 8.0
    columns = [f"synthetic_sample_{j}" for j in range(n_samples)]
    frame = pd.DataFrame(values, index=tfs + genes, columns=columns)
    return from_dataframe(frame, source="synthetic shared targets"), from_pairs(
        pairs, source="synthetic shared-target pairs"
    )


@pytest.fixture(scope="module")
def pairs() -> PairSet:
    """Exactly degree-matched negatives drawn within each split of a tf-holdout split."""
    expression, interactions = shared_targets()
    return build_pair_set(
        expression, interactions, negatives="degree-matched", split="tf-holdout", seed=0
    )


@pytest.fixture(scope="module")
def model(pairs) -> TwoTower:
    return api.train(pairs, architecture="two-tower", prior="target-frequency", **SMALL)


@pytest.fixture(scope="module")
def model_dir(model, tmp_path_factory) -> Path:
    return model.save(tmp_path_factory.mktemp("synthetic_two_tower") / "model")


def _test_auroc(est, pairs: PairSet) -> float:
    x, y = pairs.arrays("test")
    m = pairs.mask("test")
    value = grouped_auroc(y, est.predict_proba(x)[:, 1], pairs.tf_rows[m], pairs.target_rows[m])
    assert value is not None
    return value


# -- the estimator ---------------------------------------------------------------------------
def test_estimator_protocol_clone_params_and_not_fitted(pairs) -> None:
    est = TwoTower(loss="bce", n_seeds=1, seed=3)
    params = est.get_params()
    assert params["loss"] == "bce" and params["n_seeds"] == 1 and params["shared"] is True
    twin = clone(est)
    assert twin.get_params() == params and twin is not est
    twin.set_params(head="bilinear", tower="conv")
    assert (twin.head, twin.tower) == ("bilinear", "conv") and est.head == "mlp"
    for call in (
        lambda: est.predict_proba(pairs.arrays("test")[0]),
        est.pair_scorer,
        lambda: est.embed(pairs.zscores),
    ):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()


def test_cross_val_score_with_ids_derived_from_profiles(pairs) -> None:
    x, y = pairs.arrays("train")
    scores = cross_val_score(TwoTower(**{**SMALL, "max_epochs": 2}), x, y, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_check_settings_names_the_bad_setting_before_allocating() -> None:
    for settings, name in (
        ({"tower": "lstm"}, "`tower`"),
        ({"head": "dot"}, "`head`"),
        ({"loss": "hinge"}, "`loss`"),
        ({"n_seeds": 0}, "`n_seeds`"),
        ({"dropout": 1.5}, "`dropout`"),
        ({"learning_rate": 0.0}, "`learning_rate`"),
        ({"max_epochs": 2.5}, "`max_epochs`"),
        ({"shared": "yes"}, "`shared`"),
    ):
        with pytest.raises(TfcnnInputError, match=name):
            TwoTower(**settings).check_settings()
    # Sizes are capped by the weight count before any tensor is made.
    with pytest.raises(TfcnnInputError, match="weights"):
        TwoTower(hidden=4_000).check_settings(100_000)
    with pytest.raises(ValueError, match="hidden"):
        TwoTowerConfig(hidden=10**9)


def test_training_is_deterministic_for_a_seed(pairs) -> None:
    x, y = pairs.arrays("train")
    xv, yv = pairs.arrays("validation")
    fit = lambda seed: TwoTower(**SMALL, seed=seed).fit(x, y, validation_data=(xv, yv))  # noqa: E731
    a, b, c = fit(1), fit(1), fit(2)
    xt = pairs.arrays("test")[0]
    assert np.array_equal(a.predict_proba(xt), b.predict_proba(xt))
    assert a.history_ == b.history_ and a.best_epochs_ == b.best_epochs_
    assert not np.array_equal(a.predict_proba(xt), c.predict_proba(xt))


def test_a_planted_pair_relation_is_learned_under_exact_degree_matched_negatives(
    pairs, model
) -> None:
    balance = pairs.meta["balance"]
    assert balance  # per split, every TF and target exactly balanced (tfcnn.pairs)
    value = _test_auroc(model, pairs)
    assert value > 0.8, value
    # Node-identity controls are exactly 0.5 there, so the figure is pair-specific.
    assert model.record_.metrics["test"]["methods"]["target_frequency"]["pooled_auroc"] == 0.5


def test_ranking_loss_derives_node_ids_from_identical_profiles(pairs) -> None:
    x, y = pairs.arrays("train")
    m = pairs.mask("train")
    tf_ids, target_ids = profile_ids(x)
    rows = np.concatenate([pairs.tf_rows[m], pairs.target_rows[m]])
    ids = np.concatenate([tf_ids, target_ids])
    # One id per gene and one gene per id: the same partition as the pair set's gene rows.
    assert len(set(zip(rows.tolist(), ids.tolist(), strict=True))) == len(set(rows.tolist()))
    assert np.unique(ids).size == np.unique(rows).size
    derived = TwoTower(**SMALL).fit(x, y)  # no ids given: ranking loss on derived ids
    assert derived.history_[0]["accuracy"] > 0  # comparisons were made
    # Pairs where no negative shares a TF or a target with a positive cannot be ranked.
    rng = np.random.default_rng(0)
    lone = rng.standard_normal((4, 2, x.shape[2])).astype(np.float32)
    with pytest.raises(ValueError, match="loss='bce'"):
        TwoTower(**SMALL).fit(lone, np.array([1, 1, 0, 0]))


# -- files -------------------------------------------------------------------------------------
def test_save_load_round_trip_keeps_every_member(model, model_dir, pairs) -> None:
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["architecture"]["kind"] == "two-tower"
    assert meta["architecture"]["members"] == 2 and meta["training"]["n_seeds"] == 2
    assert meta["prior"]["kind"] == "target-frequency"
    names = load_file(str(model_dir / "weights.safetensors"))
    assert any(k.startswith("members.0.") for k in names)
    assert any(k.startswith("members.1.") for k in names)
    back = api.load_model(model_dir)
    assert isinstance(back, TwoTower)
    x = pairs.arrays("test")[0]
    assert np.array_equal(back.predict_proba(x), model.predict_proba(x))
    assert back.best_epochs_ == model.best_epochs_
    assert back.get_params() == model.get_params()


def _damaged(model_dir: Path, tmp_path: Path, edit_meta=None, edit_weights=None) -> Path:
    out = tmp_path / "damaged"
    out.mkdir()
    for f in model_dir.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    if edit_meta is not None:
        meta = json.loads((out / "model.json").read_text())
        edit_meta(meta)
        (out / "model.json").write_text(json.dumps(meta))
    if edit_weights is not None:
        tensors = load_file(str(out / "weights.safetensors"))
        edit_weights(tensors)
        save_file(tensors, str(out / "weights.safetensors"))
    return out


def _first(tensors: dict[str, torch.Tensor]) -> str:
    return sorted(tensors)[0]


@pytest.mark.parametrize(
    ("edit_meta", "edit_weights", "message"),
    [
        (lambda m: m["architecture"].update(kind="transformer"), None, "kind 'transformer'"),
        (lambda m: m["architecture"].update(hidden="32"), None, "hidden must be a whole"),
        (lambda m: m["architecture"].update(shared=1), None, "shared must be true or false"),
        (lambda m: m["architecture"].update(hidden=10**9), None, "hidden must be a whole"),
        (lambda m: m["architecture"].update(bogus=1), None, "unknown architecture keys"),
        (lambda m: m["training"].update(n_seeds=3), None, "differs from the architecture"),
        (lambda m: m["training"].update(loss=True), None, "loss = True has the wrong type"),
        (lambda m: m["training"].update(learning_rate=None), None, "wrong type"),
        (lambda m: m["prior"].update(weight_prior="big"), None, "prior weight_prior"),
        (lambda m: m.update(prior=[1, 2]), None, "'prior' must be a JSON object"),
        (None, lambda t: t.pop(_first(t)), "missing"),
        (None, lambda t: t.update({_first(t): torch.zeros(3)}), "wrong shape"),
        (None, lambda t: t.update(extra=torch.zeros(1)), "unexpected"),
        (None, lambda t: t[_first(t)].fill_(float("nan")), "not finite"),
    ],
)
def test_damaged_two_tower_files_are_refused(
    model_dir, tmp_path, edit_meta, edit_weights, message
) -> None:
    path = _damaged(model_dir, tmp_path, edit_meta, edit_weights)
    with pytest.raises(ModelFormatError, match=message):
        load_model(path)


def test_pair_cnn_files_load_with_or_without_a_kind(pairs, tmp_path) -> None:
    cnn = api.train(pairs, epochs=1, seed=0)
    path = cnn.save(tmp_path / "cnn")
    meta = json.loads((path / "model.json").read_text())
    assert "kind" not in meta["architecture"]  # files of earlier versions stay the same
    assert isinstance(load_model(path), PairCNN)
    meta["architecture"]["kind"] = "pair-cnn"
    (path / "model.json").write_text(json.dumps(meta))
    back = load_model(path)
    x = pairs.arrays("test")[0]
    assert isinstance(back, PairCNN)
    assert np.array_equal(back.predict_proba(x), cnn.predict_proba(x))


# -- fast inference ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"head": "interaction", "shared": False},
        {"head": "bilinear"},
        {"tower": "conv", "kernel_width": 4, "shared": False},
    ],
)
def test_fast_scorer_equals_predict_proba(pairs, settings) -> None:
    x, y = pairs.arrays("train")
    some = np.random.default_rng(0).choice(len(y), 400, replace=False)
    est = TwoTower(**{**SMALL, "max_epochs": 1, **settings}).fit(x[some], y[some])
    scorer = est.pair_scorer()
    z = np.asarray(pairs.zscores, dtype=np.float32)
    terms = scorer.gene_terms(z)
    tf_rows, target_rows = np.arange(7), np.arange(z.shape[0])
    block = scorer.score_block(terms, tf_rows, target_rows)
    grid = np.stack([z[np.repeat(tf_rows, len(target_rows))], z[np.tile(target_rows, 7)]], 1)
    direct = est.predict_proba(grid)[:, 1].reshape(block.shape)
    assert block.dtype == np.float32
    np.testing.assert_allclose(block, direct, atol=1e-5, rtol=0)
    np.testing.assert_allclose(scorer.predict_pairs(grid[:50]), direct.ravel()[:50], atol=1e-5)
    rows = np.random.default_rng(1).integers(0, z.shape[0], (2, 300))
    listed = scorer.score_pairs(terms, rows[0], rows[1])
    pairs_x = np.stack([z[rows[0]], z[rows[1]]], 1)
    np.testing.assert_allclose(listed, est.predict_proba(pairs_x)[:, 1], atol=1e-5)


def test_predict_and_scan_score_a_two_tower_model(model, model_dir, pairs, tmp_path) -> None:
    import pyarrow.parquet as pq

    from tfcnn.inference.scan import scan

    tf = pairs.genes[0]
    table = api.predict(model_dir, tf).table
    rows = [pairs.genes.index(g) for g in table["target"]]
    z = np.asarray(pairs.zscores, dtype=np.float32)
    x = np.stack([np.repeat(z[[0]], len(rows), 0), z[rows]], 1)
    np.testing.assert_allclose(table["probability"], model.predict_proba(x)[:, 1], atol=1e-5)
    out = scan(model.network_, z, list(pairs.genes), tmp_path / "scan.parquet", tfs=[tf])
    scanned = pq.read_table(out.output).to_pandas().set_index("target")["probability"]
    mine = table.set_index("target")["probability"]
    np.testing.assert_allclose(scanned.loc[mine.index], mine, atol=1e-6)


# -- prior -------------------------------------------------------------------------------------
def test_prior_blend_keeps_model_prior_and_combination_side_by_side(model, pairs) -> None:
    blend = model_prior(model)
    assert isinstance(blend, TargetPrior) and blend.n_tfs >= 1
    test = model.record_.metrics["test"]
    methods = test["methods"]
    assert {"model", "target_frequency", "prior + model"} <= set(methods)
    assert set(test["prior"]["blend"]) >= {"intercept", "weight_model", "weight_prior"}
    assert "within_target" in test["prior"]["versus_best_control"]
    x, _ = pairs.arrays("test")
    p = model.predict_proba(x)[:, 1]
    targets = pairs.table.loc[pairs.mask("test"), "target"].tolist()
    frequency = target_frequency(model.record_, targets)
    logit = np.log(p / (1 - p))
    expected = 1 / (
        1
        + np.exp(
            -(
                blend.intercept
                + blend.weight_model * logit
                + blend.weight_prior * np.log1p(frequency)
            )
        )
    )
    np.testing.assert_allclose(blend.combine(p, frequency), expected, rtol=1e-9)
    # The prior is the target-frequency control itself: same within-target (0.5) and pooled.
    assert methods["target_frequency"]["within_target_auroc"] == 0.5


def test_prior_blend_never_turns_the_model_upside_down() -> None:
    """Few validation TFs that rank pairs backwards do not reverse the model's ranking."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    frequency = rng.integers(0, 20, 400) + 10 * y  # the prior carries the labels
    backwards = np.where(y == 1, 0.3, 0.7) + rng.uniform(-0.05, 0.05, 400)
    blend = TargetPrior.fit(backwards, frequency, y, n_tfs=5)
    assert blend.model_weight_clamped and blend.weight_model == 0.0 and blend.weight_prior > 0
    combined = blend.combine(backwards, frequency)
    assert pd.Series(combined).groupby(frequency).nunique().max() == 1  # the prior alone
    forwards = TargetPrior.fit(1 - backwards, frequency, y, n_tfs=5)
    assert not forwards.model_weight_clamped and forwards.weight_model > 0
    with pytest.raises(ModelFormatError, match="weight_model must be >= 0"):
        TargetPrior.from_json({**forwards.to_json(), "weight_model": -1.0}, "model.json")


def test_prior_needs_validation_tfs_held_out(tmp_path) -> None:
    expression, interactions = shared_targets(n_tfs=20, n_targets=100)
    random_split = build_pair_set(expression, interactions, negatives="tf-matched", seed=0)
    with pytest.raises(TfcnnInputError, match="tf-holdout"):
        api.train(random_split, architecture="two-tower", prior="target-frequency", **SMALL)
    with pytest.raises(TfcnnInputError, match="`prior`"):
        api.train(random_split, architecture="two-tower", prior="hub-count", **SMALL)


# -- regulon expansion -------------------------------------------------------------------------
def test_expand_ranks_genes_for_a_seen_tf_and_keeps_every_part(model_dir, pairs) -> None:
    train = pairs.table[pairs.mask("train") & (pairs.labels == 1)]
    tf = train["tf"].value_counts().index[0]
    result = api.expand(model_dir, tf.lower() if tf.startswith("AT") else tf, min_known=3)
    t = result.table
    known = set(pairs.table.loc[pairs.mask("train") & (pairs.table["tf"] == tf), "target"])
    assert not known & set(t["gene"]) and tf not in set(t["gene"])
    assert list(t["rank"]) == list(range(1, len(t) + 1))
    assert t["score"].is_monotonic_decreasing
    for col in ("model_probability", "coexpression", "embedding_similarity", "target_frequency"):
        assert col in t.columns
    parts = t[["model_percentile", "coexpression_percentile", "embedding_percentile"]]
    np.testing.assert_allclose(t["score"], parts.mean(axis=1), atol=2e-3)
    assert (t["score"] >= 0).all() and (t["score"] <= 100).all()


def test_expand_refuses_an_unseen_tf_and_unknown_genes(model_dir, pairs) -> None:
    test_tf = pairs.table.loc[pairs.mask("test"), "tf"].iloc[0]
    with pytest.raises(TfcnnInputError, match="0 known training target"):
        api.expand(model_dir, test_tf)
    with pytest.raises(TfcnnInputError, match="not a gene"):
        api.expand(model_dir, "synthetic_no_such_gene")
    with pytest.raises(TfcnnInputError, match="`method`"):
        api.expand(model_dir, test_tf, method="psychic")
    err = user_error(run("expand", "--model", model_dir, "--tf", test_tf), "--min-known")
    assert test_tf in err


def test_regulon_evaluation_hides_part_of_every_tf(pairs) -> None:
    folds = regulon_folds(pairs.tf_rows, pairs.labels, 3, seed=0)
    for t in np.unique(pairs.tf_rows):  # every TF with pairs in several folds has some known
        assert np.unique(folds[pairs.tf_rows == t]).size > 1 or (pairs.tf_rows == t).sum() < 3
    result = evaluate_regulon(
        pairs,
        n_folds=3,
        methods=("coexpression", "model", "combined"),
        model_params={**SMALL, "n_seeds": 1},
        n_boot=50,
    )
    for method in ("coexpression", "model", "combined"):
        m = result.metrics[method]
        assert {"within_target_auroc", "within_tf_auroc", "pooled_auroc"} <= set(m)
        assert len(m["within_target_auroc_per_fold"]) == 3
        low, high = m["within_target_auroc_ci"]
        assert low <= m["within_target_auroc"] <= high
    # The planted relation is co-expression: hidden targets resemble the known ones.
    assert result.metrics["coexpression"]["within_target_auroc"] > 0.7
    assert json.dumps(result.to_json())


# -- explanations ------------------------------------------------------------------------------
def test_explain_pair_gives_gradient_x_input_per_profile(model_dir, pairs, tmp_path) -> None:
    tf, target = pairs.genes[0], pairs.genes[-1]
    e = api.explain_pair(model_dir, tf, target)
    assert e.method == "gradient-x-input"
    assert e.saliency.shape == (2, len(pairs.samples))
    assert 0 <= e.window_start <= e.window_end < len(pairs.samples)
    assert e.activation.max() == pytest.approx(1.0)
    out = ok(run("explain", "pair", "--model", model_dir, "--tf", tf, "--target", target))
    assert "window" in out
    pairs.save(tmp_path / "pairs")
    command = ["explain", "model", "--model", model_dir, "--pairs", tmp_path / "pairs"]
    user_error(run(*command, "--output", tmp_path / "x"), "two-tower", "explain pair")
    assert not (tmp_path / "x").exists()


# -- command line ------------------------------------------------------------------------------
def test_cli_trains_scans_and_lists_a_two_tower_model(pairs, tmp_path, monkeypatch) -> None:
    pairs.save(tmp_path / "pairs")
    out = tmp_path / "tt"
    options = ["--architecture", "two-tower", "--loss", "bce", "--seeds", "1", "--epochs", "2"]
    options += ["--tower", "conv", "--head", "bilinear", "--separate", "--kernel-width", "3"]
    text = ok(run("train", "--pairs", tmp_path / "pairs", "--output", out, *options))
    assert "Held-out test split" in text
    meta = json.loads((out / "model.json").read_text())
    arch = meta["architecture"]
    assert (arch["kind"], arch["tower"], arch["head"], arch["shared"]) == (
        "two-tower",
        "conv",
        "bilinear",
        False,
    )
    assert (meta["training"]["loss"], meta["training"]["max_epochs"]) == ("bce", 2)
    ok(run("scan", "--model", out, "--output", tmp_path / "all.csv", "--top-k", "3"))
    assert len(pd.read_csv(tmp_path / "all.csv")) == 3 * len(pairs.genes)
    monkeypatch.setenv("TFCNN_HOME", str(tmp_path / "home"))
    ok(run("models", "add", "--model", out, "--name", "synthetic-tt"))
    listing = ok(run("models"))
    assert "synthetic-tt" in listing and "two-tower" in listing


def test_cli_refuses_options_of_the_other_architecture(pairs, tmp_path) -> None:
    pairs.save(tmp_path / "pairs")
    base = ["train", "--pairs", tmp_path / "pairs", "--output", tmp_path / "m"]
    user_error(run(*base, "--architecture", "two-tower", "--filters", "8,8"), "--filters")
    user_error(run(*base, "--loss", "ranking"), "--loss", "two-tower")
    user_error(run(*base, "--architecture", "gnn"), "--architecture")
    user_error(run(*base, "--architecture", "two-tower", "--seeds", "0"), "--seeds")
    assert not (tmp_path / "m").exists()


def test_the_web_app_offers_scores_and_plots_a_two_tower_model(model_dir, pairs) -> None:
    from tfcnn.apps.webapp.logic import model_choices, pair_figure
    from tfcnn.inference.predict import Predictor

    choice = model_choices(str(model_dir))[0]
    assert choice.key == str(model_dir) and choice.usable
    predictor = Predictor(model_dir, name="synthetic two-tower")
    result = predictor.predict(pairs.genes[0], list(pairs.genes[60:70]))
    assert len(result.table) == 10 and result.table["probability"].between(0, 1).all()
    fig, note = pair_figure(predictor, pairs.genes[0], pairs.genes[60], 0.5)
    assert note is None  # the gradient x input window, not the profiles-only fallback
    assert "gradient-x-input" in " ".join(t.get_text() for t in fig.axes[1].get_legend().texts)


@pytest.mark.slow
def test_bench_pairmodel_quick_runs_beside_the_cnn(tmp_path) -> None:
    """`benchmarks/bench_pairmodel.py --quick`: plumbing only, no timing is judged."""
    from tests.test_bench_smoke import ROOT, run_quick

    out = tmp_path / "pairmodel.json"
    proc = run_quick(ROOT / "benchmarks" / "bench_pairmodel.py", out)
    results = json.loads(out.read_text())
    assert results["meta"]["quick"] is True and results["meta"]["synthetic_inputs"] is True
    assert {"cnn", "two-tower"} <= set(results["results"])
    for r in results["results"].values():
        assert r["max_diff"] <= 1e-5 and r["pairs"] == 64 * 1_999
    assert "SYNTHETIC" in proc.stdout and "load average" in proc.stdout.lower()
