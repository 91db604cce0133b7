"""Resume never mixes inputs (issue 12, case 8): runs are keyed by the sha256 of every
input's contents, a results folder made from other contents is refused (exit 2, naming
the changed input) or with --force started over. Synthetic data written by the tests."""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.synthetic import planted_dataset, write_pairs, write_tsv
from tfcnn.apps.cli import app
from tfcnn.runtime import Stopped
from tfcnn.study import runner
from tfcnn.study.inputs import file_sha256


@pytest.fixture()
def files(tmp_path) -> Path:
    d = tmp_path / "inputs"
    d.mkdir()
    expr, known = planted_dataset(n_tfs=8, targets_per_tf=10, n_background=60, n_samples=12)
    write_tsv(expr, d / "expr.tsv")
    write_pairs(known, d / "pairs.tsv")
    return d


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\x1b\[[0-9;]*m", "", text))


def grid(files: Path, out: Path, *extra: str) -> list[str]:
    return [
        "tune", "grid", "-o", str(out), "-x", str(files / "expr.tsv"),
        "-i", str(files / "pairs.tsv"), "--values", "2,4", "--epochs", "1",
        "--train-pairs", "40", "--workers", "1", *extra,
    ]  # fmt: skip


def finished(out: Path) -> set[str]:
    return {p.parent.name for p in (out / "runs").glob("*/metrics.json")}


def test_changed_expression_contents_are_refused_then_started_over(
    files, tmp_path, monkeypatch
) -> None:
    out = tmp_path / "grid"
    real = runner.run_job
    calls = 0

    def stopped_after_three(config, inputs=None):
        nonlocal calls
        calls += 1
        if calls == 4:  # as if Ctrl-C arrived during the fourth run
            raise Stopped(signal.SIGINT)
        return real(config, inputs)

    monkeypatch.setattr(runner, "run_job", stopped_after_three)
    r = CliRunner().invoke(app, grid(files, out))
    assert r.exit_code == 130, r.output
    assert "rerun the same command to resume" in plain(r.output).lower()
    old_runs = finished(out)
    assert len(old_runs) == 3
    monkeypatch.setattr(runner, "run_job", real)

    # the contents of the expression file change (same path, same size class)
    expr = files / "expr.tsv"
    before = file_sha256(expr)
    lines = expr.read_text().splitlines()
    cells = lines[1].split("\t")
    cells[1] = str(float(cells[1]) + 0.5)
    lines[1] = "\t".join(cells)
    expr.write_text("\n".join(lines) + "\n")
    settings_before = (out / "study-config.json").read_text()

    refused = CliRunner().invoke(app, grid(files, out))
    assert refused.exit_code == 2, refused.output
    msg = plain(refused.output)
    assert "--expression" in msg and "expr.tsv" in msg and before[:12] in msg
    assert "--pairs" not in msg and "--interactions" not in msg  # only what changed
    assert "--force" in msg
    assert finished(out) == old_runs  # untouched
    assert (out / "study-config.json").read_text() == settings_before

    forced = CliRunner().invoke(app, grid(files, out, "--force"))
    assert forced.exit_code == 0, forced.output
    assert "8 runs ran, 0 reused" in plain(forced.output)
    new_settings = json.loads((out / "study-config.json").read_text())
    assert new_settings["data"]["contents"]["expression"]["sha256"] == file_sha256(expr)
    rows = json.loads((out / "study.json").read_text())["tuning"]["grid"]["rows"]
    assert len(rows) == 8
    # the eight runs of the report are all new: none of the old contents is used
    from tfcnn.study import study

    current = {runner.config_hash(c) for c in study.tuning_configs(new_settings, "grid")}
    assert len(current) == 8 and not current & old_runs


def test_runs_are_keyed_by_contents_not_paths(files, tmp_path) -> None:
    """The same bytes under another path: every run is reused; configs hold no path."""
    out = tmp_path / "grid"
    first = CliRunner().invoke(app, grid(files, out))
    assert first.exit_code == 0, first.output
    moved = tmp_path / "moved"
    shutil.copytree(files, moved)
    again = CliRunner().invoke(app, grid(moved, out))
    assert again.exit_code == 0, again.output
    assert "0 runs ran, 8 reused" in plain(again.output)
    sha = file_sha256(files / "expr.tsv")
    for config in (out / "runs").glob("*/config.json"):
        text = config.read_text()
        assert sha in text and "expr.tsv" not in text and str(files) not in text
    settings = json.loads((out / "study-config.json").read_text())
    assert settings["data"]["expression"] == str(moved / "expr.tsv")  # as typed, last run


def test_another_known_pairs_file_is_named(files, tmp_path) -> None:
    out = tmp_path / "grid"
    assert CliRunner().invoke(app, grid(files, out)).exit_code == 0
    pairs = files / "pairs.tsv"
    pairs.write_text("\n".join(pairs.read_text().splitlines()[:-3]) + "\n")
    r = CliRunner().invoke(app, grid(files, out))
    assert r.exit_code == 2
    msg = plain(r.output)
    assert "--interactions" in msg and "pairs.tsv" in msg and "--expression" not in msg
