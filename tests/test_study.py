"""The study: baselines and controls, resumable parallel runs, `tfcnn study` / `report`."""

from __future__ import annotations

import json
import os
import re
import shlex
import time
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from tests.synthetic import planted_dataset, write_pairs, write_tsv
from tfcnn.apps.cli import app
from tfcnn.errors import TfcnnInputError
from tfcnn.evaluation import baselines
from tfcnn.evaluation.metrics import auroc
from tfcnn.study import protocols, runner, study, tuning
from tfcnn.study.inputs import StudyInputs, content_spec, read_inputs
from tfcnn.study.protocols import data_spec


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A synthetic planted dataset written as the files a user gives the CLI."""
    d = tmp_path_factory.mktemp("synthetic")
    # 30 TFs: two TF-held-out folds whose validation splits hold several TFs, as
    # degree-matched negatives drawn within each split need
    expr, known = planted_dataset(n_tfs=30, targets_per_tf=6, n_background=60, n_samples=16)
    write_tsv(expr, d / "expr.tsv")
    write_pairs(known, d / "pairs.tsv")
    return d


def test_correlation_baselines() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 2, 9))
    rho = baselines.spearman_scores(x)
    expected = [spearmanr(x[i, 0], x[i, 1]).statistic for i in range(30)]
    np.testing.assert_allclose(rho, expected, atol=1e-12)
    np.testing.assert_allclose(
        baselines.absolute_correlation_scores(x), np.abs(baselines.pearson_scores(x))
    )
    assert baselines.correlation_features(x).shape == (30, 4)


def test_neighbour_transfer_is_the_mean_r_with_known_regulators_minus_non_regulators() -> None:
    """Against a loop over the definition, on SYNTHETIC profiles; blocks of targets and
    targets or TFs without labels change nothing (a side with no TF counts 0)."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((40, 12))
    train_tf, train_target = rng.integers(0, 15, 120), rng.integers(15, 40, 120)
    train_label = rng.integers(0, 2, 120)
    tf, target = rng.integers(0, 20, 60), rng.integers(15, 40, 60)
    r = np.corrcoef(z)
    expected = []
    for x, g in zip(tf, target, strict=True):
        score = 0.0
        for label, sign in ((1, 1.0), (0, -1.0)):
            refs = train_tf[(train_target == g) & (train_label == label)]
            score += sign * r[x, refs].mean() if refs.size else 0.0
        expected.append(score)
    args = (z, train_tf, train_target, train_label, tf, target)
    np.testing.assert_allclose(baselines.neighbour_transfer_scores(*args), expected, atol=1e-12)
    np.testing.assert_allclose(
        baselines.neighbour_transfer_scores(*args, block=3), expected, atol=1e-12
    )
    empty = baselines.neighbour_transfer_scores(z, train_tf[:0], train_target[:0], [], tf, target)
    assert empty.shape == (60,) and not empty.any()


def test_neighbour_transfer_reads_the_relation_not_the_nodes() -> None:
    """A held-out TF that resembles a training TF inherits that TF's targets; the same
    TF scores other targets lower, and a target's score does not follow its degree."""
    rng = np.random.default_rng(4)
    z = rng.standard_normal((10, 30))
    z[1] = z[0] + 0.3 * rng.standard_normal(30)  # TF 1 (held out) resembles TF 0
    # training: TF 0 regulates genes 5 and 6, not 7 and 8; TF 2 the reverse
    train_tf = np.array([0, 0, 0, 0, 2, 2, 2, 2])
    train_target = np.array([5, 6, 7, 8, 5, 6, 7, 8])
    train_label = np.array([1, 1, 0, 0, 0, 0, 1, 1])
    tf = np.array([1, 1, 1, 1])
    score = baselines.neighbour_transfer_scores(
        z, train_tf, train_target, train_label, tf, np.array([5, 6, 7, 8])
    )
    assert min(score[:2]) > max(score[2:])


def test_logistic_and_single_profile_controls_learn_what_they_can_see() -> None:
    rng = np.random.default_rng(1)
    n, s = 400, 10
    x = rng.standard_normal((n, 2, s))
    y = rng.integers(0, 2, n)
    # label visible in the target row only, and as a correlation
    x[y == 1, 1, :] += 1.5
    x[y == 1, 0, :] = x[y == 1, 1, :] + 0.3 * rng.standard_normal((int(y.sum()), s))
    tr, te = slice(0, 300), slice(300, None)
    target_only = baselines.single_profile_scores(x[tr], y[tr], x[te], row=1, seed=0)
    assert auroc(y[te], target_only) > 0.9
    again = baselines.single_profile_scores(x[tr], y[tr], x[te], row=1, seed=0)
    np.testing.assert_array_equal(target_only, again)  # seeded
    logit = baselines.logistic_correlation_scores(x[tr], y[tr], x[te])
    assert auroc(y[te], logit) > 0.9
    # an uninformative row: chance
    z = x.copy()
    z[:, 0, :] = rng.standard_normal((n, s))
    assert abs(auroc(y[te], baselines.single_profile_scores(z[tr], y[tr], z[te], 0)) - 0.5) < 0.15


def test_genie3_finds_the_planted_regulator() -> None:
    expr, known = planted_dataset(n_tfs=5, targets_per_tf=6, n_background=10, n_samples=30)
    z = (expr.values - expr.values.mean(1, keepdims=True)) / expr.values.std(1, keepdims=True)
    genes = list(expr.genes)
    regs = np.array([genes.index(f"synthetic_tf_{i:02d}") for i in range(5)])
    targets = np.array([genes.index(t) for t in known.pairs["target"]])
    imp = baselines.genie3_importances(z, regs, targets, seed=0, n_estimators=20)
    true_tf = np.array([int(t[-2:]) for t in known.pairs["tf"]])
    assert imp.shape == (5, len(targets))
    assert (imp.argmax(axis=0) == true_tf).mean() > 0.9
    # a regulator is never its own candidate
    self_imp = baselines.genie3_importances(z, regs, regs, seed=0, n_estimators=5)
    assert np.all(np.diag(self_imp) == 0)


def _tune_configs(files: Path, n: int) -> tuple[list[dict], StudyInputs]:
    """``n`` grid jobs on the synthetic files, and their inputs (read once, here)."""
    inputs = read_inputs(data_spec(str(files / "expr.tsv"), str(files / "pairs.tsv")))
    data = content_spec(inputs.spec)
    return tuning.grid_configs(data, values=(2, 4), epochs=1, train_pairs=60)[:n], inputs


def test_runs_resume_only_the_missing_ones(files, tmp_path) -> None:
    configs, inputs = _tune_configs(files, 4)
    first = runner.run_jobs(configs[:2], tmp_path, inputs=inputs, workers=1)
    assert first == {"skipped": 0, "ran": 2}
    stamps = {
        runner.config_hash(c): os.stat(runner.run_dir(tmp_path, c) / "metrics.json").st_mtime_ns
        for c in configs[:2]
    }
    # an interrupted run leaves no metrics.json: it is rerun, not trusted
    partial = runner.run_dir(tmp_path, configs[2])
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")
    time.sleep(0.01)
    second = runner.run_jobs(configs, tmp_path, inputs=inputs, workers=2)
    assert second == {"skipped": 2, "ran": 2}
    for c in configs[:2]:
        path = runner.run_dir(tmp_path, c) / "metrics.json"
        assert os.stat(path).st_mtime_ns == stamps[runner.config_hash(c)]
    for c in configs:
        d = runner.run_dir(tmp_path, c)
        assert json.loads((d / "config.json").read_text()) == c
        m = json.loads((d / "metrics.json").read_text())
        assert m["n_train"] == 60 and len(m["history"]) == 1
        assert 0.0 <= m["val_accuracy"] <= 1.0
    assert runner.run_jobs(configs, tmp_path, inputs=inputs, workers=2) == {"skipped": 4, "ran": 0}
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]


def test_protocol_job_reports_within_target_auroc_with_a_ci(files, tmp_path) -> None:
    """Issue 14: a protocol run's metrics are the library's evaluation (within-target,
    within-TF and pooled, the CNN minus the best control with a TF-bootstrap CI)."""
    inputs = read_inputs(data_spec(str(files / "expr.tsv"), str(files / "pairs.tsv")))
    config = {
        "kind": "protocol",
        "data": content_spec(inputs.spec),
        "split": "random",
        "negatives": "degree-matched",
        "replicate": 0,
        "n_replicates": 2,
        "seed": 0,
        "epochs": 1,
        "fractions": [0.8, 0.1, 0.1],
        "bootstrap": 30,
    }
    m = protocols.run_protocol_job(config, tmp_path)
    # a job without `models` (as `--models pair-cnn` makes) is the study before issue 15
    assert set(m["methods"]) == {n for n, _ in protocols.METHODS} - {"two_tower", "genie3"}
    assert "neighbour_transfer" in m["methods"]  # a relational yardstick in every run
    assert "models" not in m and "two_tower" not in m
    for name in ("cnn", "pearson", "logistic_correlation", "tf_only", "target_frequency"):
        assert {"within_target_auroc", "within_tf_auroc", "pooled_auroc"} <= set(m["methods"][name])
    assert m["methods"]["target_frequency"]["within_target_auroc"] == pytest.approx(0.5)
    assert m["methods"]["cnn"]["within_target_auprc"] is not None  # the CNN's in full
    assert m["methods"]["pearson"]["pooled_auprc"] is not None
    head = m["versus_best_control"]["within_target"]
    assert head["low"] <= head["difference"] <= head["high"]
    assert head["difference"] == pytest.approx(
        m["methods"]["cnn"]["within_target_auroc"] - head["control_auroc"]
    )
    assert m["bootstrap"] == {"replicates": 30, "resampled": "TFs", "seed": 0}
    assert isinstance(m["warnings"], list)
    assert "only the positives' own pairs" in m["pairs_meta"]["negative_pool"]["policy"]
    assert (tmp_path / protocols.SCORES_FILE).is_file()


def test_protocol_job_trains_the_two_tower_beside_the_cnn(files, tmp_path) -> None:
    """Issue 15: the two-tower model on the same pairs and seed, in the same evaluation:
    within-target AUROC and its margin over the best control with a TF-bootstrap CI."""
    inputs = read_inputs(data_spec(str(files / "expr.tsv"), str(files / "pairs.tsv")))
    settings = study.default_settings(
        inputs.spec, replicates=2, epochs=2, bootstrap=30, two_tower={"n_seeds": 1}
    )
    [config] = [
        c
        for c in study.protocol_configs(settings)
        if (c["split"], c["negatives"], c["replicate"]) == ("tf-holdout", "degree-matched", 0)
    ]
    assert config["models"] == ["pair-cnn", "two-tower"]
    m = protocols.run_protocol_job(config, tmp_path)
    tt = m["methods"]["two_tower"]
    assert {"within_target_auroc", "within_tf_auroc", "pooled_auroc", "pooled_auprc"} <= set(tt)
    assert tt["within_target_auroc"] is not None
    versus = m["models"]["two_tower"]["versus_best_control"]
    for kind, head in versus.items():
        assert head["control"] == m["versus_best_control"][kind]["control"]  # same controls
        assert head["low"] <= head["difference"] <= head["high"]
        assert head["difference"] == pytest.approx(
            tt[f"{kind}_auroc"] - m["methods"][head["control"]][f"{kind}_auroc"]
        )
    assert isinstance(m["models"]["two_tower"]["warnings"], list)
    facts = m["two_tower"]
    assert facts["settings"]["max_epochs"] == 2 and facts["settings"]["n_seeds"] == 1
    assert facts["epochs_run"] == [2] and facts["validation"]["tfs"].startswith("validation TFs")
    assert tt["within_target_auprc"] is not None  # in full, as the CNN's
    scores = pd.read_csv(tmp_path / protocols.SCORES_FILE, sep="\t")
    assert {"cnn", "two_tower"} <= set(scores.columns)
    # `--models pair-cnn`: the jobs are exactly those of the study before issue 15
    old = study.default_settings(inputs.spec, replicates=2, models=("pair-cnn",))
    assert all("models" not in c and "two_tower" not in c for c in study.protocol_configs(old))


def test_two_tower_falls_back_to_bce_only_when_ranking_is_impossible(files, monkeypatch) -> None:
    """Random negatives on small data may share no TF or target with a positive: the
    ranking loss cannot train, so the run uses bce and records why (never silently)."""
    from tfcnn.model.two_tower import TwoTower

    inputs = read_inputs(data_spec(str(files / "expr.tsv"), str(files / "pairs.tsv")))
    settings = study.default_settings(inputs.spec, replicates=2, epochs=1)
    config = {**study.protocol_configs(settings)[0], "two_tower": {"n_seeds": 1}}
    pairs = protocols.replicate_pairs(config)
    real = TwoTower.fit_pairs
    losses: list[str] = []

    def fit_pairs(self, *args, **kwargs):
        losses.append(self.loss)
        if self.loss == "ranking":
            raise ValueError("the ranking loss needs negatives that share a TF or a target")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TwoTower, "fit_pairs", fit_pairs)
    model, note = protocols.fit_two_tower(pairs, config, seed=0)
    assert losses == ["ranking", "bce"] and model.loss == "bce" and "bce" in note
    monkeypatch.setattr(TwoTower, "fit_pairs", real)
    model, note = protocols.fit_two_tower(pairs, config, seed=0)
    assert model.loss == "ranking" and note == ""


def test_combined_evaluation_adds_the_two_tower_without_changing_the_cnn() -> None:
    """The two-tower model joins the CNN's bootstrap (same resampled TFs): the CNN's
    numbers are those of a study without it; no GENIE3 column is needed."""
    rng = np.random.default_rng(3)
    n = 400
    table = pd.DataFrame(
        {
            "label": rng.integers(0, 2, n),
            "tf": [f"synthetic_tf_{i}" for i in rng.integers(0, 12, n)],
            "target": [f"synthetic_g_{i}" for i in rng.integers(0, 25, n)],
            "fold": rng.integers(0, 2, n),
        }
    )
    for name in ("cnn", "two_tower", "pearson", "tf_only", "target_only", "target_frequency"):
        table[name] = rng.random(n) + (0.3 * table["label"] if name == "two_tower" else 0)
    both = study.combined_evaluation(table, "cnn", n_boot=40, also=["two_tower"])
    cnn_only = study.combined_evaluation(table.drop(columns="two_tower"), "cnn", n_boot=40)
    assert both["versus_best_control"] == cnn_only["versus_best_control"]
    assert both["model_ci"] == cnn_only["model_ci"] and "models" not in cnn_only
    tt = both["models"]["two_tower"]
    ci = tt["model_ci"]["within_target"]
    assert ci["auroc"] == pytest.approx(both["methods"]["two_tower"]["within_target_auroc"])
    assert ci["low"] <= ci["auroc"] <= ci["high"] and ci["auroc"] > 0.6
    head = tt["versus_best_control"]["within_target"]
    assert head["control"] == both["versus_best_control"]["within_target"]["control"]
    assert head["low"] > 0 and not any(w.startswith("Within targets") for w in tt["warnings"])


def test_resume_with_other_models_is_refused(files, tmp_path) -> None:
    """A folder's `--models` is part of its settings; a folder made before issue 15 (no
    `models`) is the CNN alone and resumes with `--models pair-cnn` only."""
    inputs = read_inputs(data_spec(str(files / "expr.tsv"), str(files / "pairs.tsv")))
    before = study.default_settings(inputs.spec, replicates=2, models=("pair-cnn",))
    del before["protocols"]["models"]
    study.prepare_output(tmp_path, before, force=False)
    cnn_only = study.default_settings(inputs.spec, replicates=2, models=("pair-cnn",))
    study.prepare_output(tmp_path, cnn_only, force=False)  # resumes
    both = study.default_settings(inputs.spec, replicates=2)
    with pytest.raises(TfcnnInputError, match="other models \\(pair-cnn; now pair-cnn,two-tower"):
        study.prepare_output(tmp_path, both, force=False)
    study.prepare_output(tmp_path, both, force=True)
    with pytest.raises(TfcnnInputError, match="Rerun with `models` pair-cnn,two-tower"):
        study.prepare_output(tmp_path, cnn_only, force=False)


def test_warnings_collapse_to_one_sentence() -> None:
    """Issue 18: one sentence for all protocols, not a paragraph per control."""

    def row(warnings: list[str], low: float) -> dict:
        return {
            "combined": {
                "warnings": warnings,
                "versus_best_control": {"within_target": {"low": low}},
            }
        }

    assert "beats the best control" in study.warning_summary([row([], 0.01)])
    rows = [row(["a", "b"], -0.02), row(["c"], 0.01), row([], 0.05)]
    text = study.warning_summary(rows)
    assert "Under 2 of 3 protocols" in text and "includes 0 in 1 of them" in text
    assert text.count(".") == 1 and "two-tower" not in text
    rows[0]["combined"]["models"] = {"two_tower": {"warnings": ["d"]}}
    rows[1]["combined"]["models"] = {"two_tower": {"warnings": []}}
    text = study.warning_summary(rows)
    assert "a control matches or beats the two-tower model under 1 of 2 protocols" in text
    assert text.count(".") == 1


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\x1b\[[0-9;]*m", "", text))


def test_study_and_report_end_to_end(files, tmp_path) -> None:
    out = tmp_path / "res"
    args = [
        "study", "-o", str(out), "-x", str(files / "expr.tsv"), "-i", str(files / "pairs.tsv"),
        "--split", "random,tf-holdout", "--negatives", "random,degree-matched",
        "--replicates", "2", "--epochs", "2", "--genie3-trees", "3", "--no-tune",
        "--workers", "1", "--bootstrap", "50", "--two-tower-seeds", "1",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "9 runs ran" in plain(result.output)
    summary = json.loads((out / "study.json").read_text())
    assert summary["missing_runs"] == 0
    rows = {(r["split"], r["negatives"]): r for r in summary["protocols"]}
    assert set(rows) == {
        ("random", "random"),
        ("random", "degree-matched"),
        ("tf-holdout", "random"),
        ("tf-holdout", "degree-matched"),
    }
    for r in rows.values():
        for name in ("cnn", "pearson", "genie3", "tf_only", "target_frequency"):
            for metric in ("within_target_auroc", "pooled_auroc"):
                assert r["methods"][name][metric]["n"] == 2
            # within-TF needs a TF with both classes: random negatives rarely share one
            assert r["methods"][name]["within_tf_auroc"]["n"] >= 1
        # all replicates' test pairs together: every method, the CNN's CIs, the margin
        combined = r["combined"]
        assert set(combined["methods"]) >= {"cnn", "two_tower", "genie3", "tf_only"}
        # the two-tower model (issue 15, the default `--models`) gets what the CNN gets
        for name, ev in (("cnn", combined), ("two_tower", combined["models"]["two_tower"])):
            for kind in ("within_target", "within_tf", "pooled"):
                ci = ev["model_ci"][kind]
                assert ci["low"] <= ci["auroc"] <= ci["high"]
                assert ci["auroc"] == pytest.approx(combined["methods"][name][f"{kind}_auroc"])
            head = ev["versus_best_control"]["within_target"]
            assert head["low"] <= head["difference"] <= head["high"]
        assert r["methods"]["two_tower"]["within_target_auroc"]["n"] == 2
        # node-level controls cannot rank pairs of one target: exactly 0.5 within targets
        for control in ("target_only", "target_frequency"):
            assert combined["methods"][control]["within_target_auroc"] == pytest.approx(0.5)
    # tf-holdout with degree-matched negatives: drawn within each fold's splits, so a
    # target's training frequency says nothing on the test pairs, pooled too
    strict = rows[("tf-holdout", "degree-matched")]["combined"]["methods"]
    assert strict["target_frequency"]["pooled_auroc"] == pytest.approx(0.5)
    d = summary["data_summary"]
    assert d["n_genes"] == 30 + 30 * 6 + 60 and d["n_samples"] == 16
    assert d["n_regulators"] == 30 and d["top_regulator"]["share"] == pytest.approx(1 / 30, 1e-3)
    assert "only the positives' own pairs" in d["negative_pool"]["policy"]
    assert len(summary["verdict"]) == 3 and "within-target AUROC" in summary["verdict"][0]
    goal = summary["goal"]
    assert re.fullmatch(
        r"Goal: within-target AUROC >= 0\.58: (not )?reached \(best: .+ \d\.\d{3}, 95% CI "
        r"\d\.\d{3}-\d\.\d{3}; TFs held out, degree-matched negatives\)\. Every fold >= 0\.52: "
        r"(not )?reached \(lowest \d\.\d{3} of \d\)\.",
        goal,
    ), goal
    # the lowest fold is the best model's own, under that protocol
    best = next(n for n, label in protocols.METHODS if f"(best: {label} " in goal)
    folds = rows[("tf-holdout", "degree-matched")]["methods"][best]["within_target_auroc"]
    assert f"(lowest {min(folds['values']):.3f} of {folds['n']})" in goal
    html = (out / "report.html").read_text()
    assert html.count("two-tower model") >= 3 and html_escape(goal) in html
    lead = html[html.index("Table 1.") :]
    lead = lead[: lead.index("</table>")]
    assert lead.count("<td class=l>two-tower model</td>") == 4  # one row per protocol
    assert lead.count("<td class=l>CNN</td>") == 4
    assert "the two-tower model (issue 15" in html and "weights kept from epoch" in html
    assert html.count("data:image/png;base64,") >= 3
    assert 'src="http' not in html and "<script" not in html  # self-contained
    _check_report_layout(html)
    # the recorded command recreates the same settings: rerunning it has nothing to do
    [command] = json.loads((out / "study-config.json").read_text())["commands"]
    assert f"tfcnn study --output {out}" in command and command in html
    again = CliRunner().invoke(app, shlex.split(command)[1:])
    assert again.exit_code == 0 and "0 runs ran, 9 reused" in plain(again.output)
    other = CliRunner().invoke(app, [*shlex.split(command)[1:], "--models", "pair-cnn"])
    assert other.exit_code == 2 and "other models" in plain(other.output), other.output
    assert "--models pair-cnn,two-tower" in plain(other.output)

    # `tfcnn report`: refuses to replace without --force; embeds explanation figures
    refused = CliRunner().invoke(app, ["report", str(out)])
    assert refused.exit_code == 2 and "--force" in plain(refused.output)
    (out / "explain").mkdir()
    png = (out / "report.html").read_text().split("data:image/png;base64,")[1].split('"')[0]
    import base64

    (out / "explain" / "fig.png").write_bytes(base64.b64decode(png))
    (out / "explain" / "explain.json").write_text(
        json.dumps({"figures": [{"file": "fig.png", "caption": "synthetic saliency caption"}]})
    )
    ok = CliRunner().invoke(app, ["report", str(out), "--force"])
    assert ok.exit_code == 0, ok.output
    assert "synthetic saliency caption" in (out / "report.html").read_text()


def test_cnn_only_study_has_no_two_tower_anywhere(files, tmp_path) -> None:
    """`--models pair-cnn` (and no GENIE3): the study as before issue 15, report included."""
    out = tmp_path / "cnn"
    args = [
        "study", "-o", str(out), "-x", str(files / "expr.tsv"), "-i", str(files / "pairs.tsv"),
        "--split", "tf-holdout", "--negatives", "degree-matched", "--replicates", "2",
        "--epochs", "1", "--genie3-trees", "0", "--no-tune", "--workers", "1",
        "--bootstrap", "20", "--models", "pair-cnn",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Goal: within-target AUROC >= 0.58" in plain(result.output)
    summary = json.loads((out / "study.json").read_text())
    [row] = summary["protocols"]
    assert "two_tower" not in row["combined"]["methods"] and "models" not in row["combined"]
    assert "two_tower" not in row["methods"] and "two_tower" not in row
    html = (out / "report.html").read_text()
    lead = html[html.index("Table 1.") :]
    assert "two-tower" not in lead[: lead.index("</table>")]
    assert "two-tower model</th>" not in html and "the two-tower model (issue 15" not in html


def _check_report_layout(html: str) -> None:
    """Issue 18: the verdict first, then Figure 1; every figure numbered with a caption."""
    body = html[html.index("<body>") :]
    verdict = body.index("class=verdict")
    figures_at = [m.start() for m in re.finditer("<figure", body)]
    assert figures_at and verdict < figures_at[0]
    assert body.index("Figure 1.") > verdict
    assert body.index("Figure 1.") < body.index("Table 1.")  # the dot plot right after it
    for i, start in enumerate(figures_at, start=1):
        end = body.index("</figure>", start)
        block = body[start:end]
        assert "<figcaption" in block and f"Figure {i}" in block, block[-400:]
        caption = block[block.index("<figcaption") :]
        assert len(re.sub("<[^>]+>", "", caption)) > 80  # says what it shows
    assert "What to conclude" in body
    assert "Ceiling of the labels" in body
    # counts are integers, never means such as "36.3" TFs
    first = body[body.index("Table 1.") :]
    first = first[: first.index("</table>")]
    cells = re.findall(r"<td>([^<]*)</td>", first)
    assert cells and all(re.fullmatch(r"[\d,]+", c) for c in cells[:2])
    # text columns left-aligned, numbers right-aligned (the default)
    assert "<tr><td class=l>random</td><td class=l>random</td>" in first
    kept = body[body.index("What each protocol kept") :]
    assert "<th class=l>split</th>" in kept and "<th>test pairs</th>" in kept


def test_report_names_genes_with_their_symbols() -> None:
    """Issue 18: AGI codes in the report carry the symbol of the bundled AtRegNet names."""
    from tfcnn.study.report import _with_symbols

    assert _with_symbols("largest TF AT5G61850, then AT9G99999") == (
        "largest TF AT5G61850 (LFY), then AT9G99999"
    )


def test_study_refuses_bad_options_and_foreign_folders(files, tmp_path) -> None:
    base = ["study", "-x", str(files / "expr.tsv"), "-i", str(files / "pairs.tsv")]
    bad = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "a"), "--split", "bogus"])
    assert bad.exit_code == 2 and "--split" in plain(bad.output)
    for models, message in (("bogus", "subset of pair-cnn, two-tower"), ("two-tower", "include")):
        r = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "m"), "--models", models])
        assert r.exit_code == 2 and "--models" in plain(r.output) and message in plain(r.output)
    r = CliRunner().invoke(app, [*base, "-o", str(tmp_path / "m"), "--two-tower-seeds", "0"])
    assert r.exit_code == 2 and "--two-tower-seeds must be from 1" in plain(r.output)
    assert not (tmp_path / "m").exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    r = CliRunner().invoke(app, [*base, "-o", str(foreign), "--no-tune", "--replicates", "2"])
    assert r.exit_code == 2 and "not a tfcnn results folder" in plain(r.output)
    r = CliRunner().invoke(app, ["report", str(tmp_path / "missing")])
    assert r.exit_code == 2
    only_x = CliRunner().invoke(app, ["study", "-o", str(tmp_path / "b"), "-x", "e.tsv"])
    assert only_x.exit_code == 2 and "both" in plain(only_x.output)


def test_runs_on_an_in_process_dask_scheduler(files, tmp_path) -> None:
    """The quick case; worker processes in other folders: tests/test_study_dask.py."""
    distributed = pytest.importorskip("dask.distributed")
    configs, inputs = _tune_configs(files, 2)
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        counts = runner.run_jobs(
            configs, tmp_path, inputs=inputs, scheduler=cluster.scheduler_address
        )
    assert counts == {"skipped": 0, "ran": 2}
    local = tmp_path / "local"
    runner.run_jobs(configs, local, inputs=inputs, workers=1)
    for c in configs:  # same seed, same numbers wherever it ran
        a = runner.load_run(tmp_path, c)
        b = runner.load_run(local, c)
        assert a["val_accuracy"] == b["val_accuracy"] and a["val_loss"] == b["val_loss"]


def test_in_process_runs_restore_the_thread_settings(files, tmp_path) -> None:
    import torch

    before = torch.get_num_threads()
    configs, inputs = _tune_configs(files, 1)
    runner.run_jobs(configs, tmp_path, inputs=inputs, workers=1)
    assert torch.get_num_threads() == before


def test_tune_commands_write_tables_and_report(files, tmp_path) -> None:
    data = ["-x", str(files / "expr.tsv"), "-i", str(files / "pairs.tsv"), "--workers", "1"]
    grid = tmp_path / "grid"
    r = CliRunner().invoke(
        app,
        ["tune", "grid", "-o", str(grid), *data, "--values", "2,4", "--epochs", "1"]
        + ["--train-pairs", "40"],
    )
    assert r.exit_code == 0, r.output
    rows = json.loads((grid / "study.json").read_text())["tuning"]["grid"]["rows"]
    assert len(rows) == 8 and {(x["filters_1"], x["units"]) for x in rows} >= {(2, 4), (4, 2)}
    accs = [x["val_accuracy"] for x in rows]
    assert accs == sorted(accs, reverse=True)
    assert "Architecture grid (the study's Figure 2)" in (grid / "report.html").read_text()
    reg = tmp_path / "reg"
    r = CliRunner().invoke(
        app,
        ["tune", "regularisation", "-o", str(reg), *data, "--dropouts", "0,0.1"]
        + ["--batch-sizes", "32", "--epochs", "1", "--train-pairs", "40"],
    )
    assert r.exit_code == 0, r.output
    table = json.loads((reg / "study.json").read_text())["tuning"]["regularisation"]["rows"]
    assert len(table) == 8  # 2 x 2 batch norms x 2 dropouts x 1 x 1
    assert {(x["dropout_used"], x["rate"]) for x in table} == {(False, 0.0), (True, 0.1)}
    assert "Regularisation scan (the study's Table 1)" in (reg / "report.html").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("notjson", "is not valid JSON"),
        ('{"a": 1}', "is not the settings file of a tfcnn study"),
        ('{"data": {"expression": 1}, "seed": 0}', "is not the settings file"),
        ("[" * 100_000 + "]" * 100_000, "is not valid JSON"),
        (
            '{"data": {"expression": "e", "interactions": "i", "contents": [1]}, "seed": 0}',
            "is not the settings file",
        ),
        (
            '{"data": {"expression": "e", "interactions": "i", "contents": {"expression": 5}}, '
            '"seed": 0}',
            "is not the settings file",
        ),
    ],
)
def test_damaged_settings_are_refused_by_report_and_rerun(tmp_path, content, message) -> None:
    """Issue 12: a corrupt study-config.json gave tracebacks on rerun and in `report`."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / study.SETTINGS_FILE).write_text(content)
    runner_ = CliRunner()
    for args in (["report", str(folder)], ["tune", "grid", "-o", str(folder), "--values", "2"]):
        out = runner_.invoke(app, args)
        assert out.exit_code == 2, (args, out.output)
        assert message in " ".join(out.output.split()), out.output
    assert (folder / study.SETTINGS_FILE).read_text() == content  # left as it was
