"""Packaging (issue 19): the core install works without the optional packages, a missing
extra is named (exit 2), one version source, ``python -m tfcnn``, shell completion, the
data home, and what the wheel holds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import platformdirs
import pytest

import tfcnn
from tfcnn.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: Top-level modules that only the extras provide.
OPTIONAL = ("shiny", "openpyxl", "h5py", "dask", "distributed", "anndata", "numba")

# Run in a fresh interpreter: every optional package is blocked by a meta-path finder that
# records each attempt, then the core commands and a tiny synthetic run go through.
_BLOCKED_RUN = r"""
import importlib.abc, json, sys
from pathlib import Path

BLOCKED = set(sys.argv[1].split(","))
attempts = []

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Block())
tmp = Path(sys.argv[2])
out = {}

import typer
from typer.testing import CliRunner

import tfcnn
from tfcnn.apps.cli import app
from tests.synthetic import planted_dataset, write_tsv, write_pairs

runner = CliRunner()

def run(args):
    res = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return {"code": res.exit_code, "output": res.output}

# 1. every command's --help (imports every command module and its options)
group = typer.main.get_command(app)
helps, stack = {}, [((), group)]
while stack:
    path, cmd = stack.pop()
    helps[" ".join(path) or "tfcnn"] = run([*path, "--help"])["code"]
    for name, sub in getattr(cmd, "commands", {}).items():
        stack.append(((*path, name), sub))
out["help"] = helps
out["import_attempts"] = sorted(set(attempts))  # importing every command module

# 2. a tiny synthetic run: library and CLI
expr, known = planted_dataset(n_tfs=12, targets_per_tf=6, n_background=20, n_samples=8)
pairs = tfcnn.build_pairs(expr, known, negatives="tf-matched", split="tf-holdout", seed=0)
model = tfcnn.train(pairs, epochs=1, filters=(2, 2), units=2, batch_size=16, seed=0)
tfcnn.evaluate(model, pairs, n_boot=10)
saved = model.save(tmp / "synthetic_model")
tfcnn.predict(saved, expr.genes[0])
write_tsv(expr, tmp / "synthetic_expression.tsv")
write_pairs(known, tmp / "synthetic_pairs.tsv")
out["cli"] = {
    "build-pairs": run(["build-pairs", "-x", tmp / "synthetic_expression.tsv",
                        "-i", tmp / "synthetic_pairs.tsv", "--negatives", "tf-matched",
                        "--split", "tf-holdout", "-o", tmp / "synthetic_pairs"])["code"],
    "scan": run(["scan", "-m", saved, "-o", tmp / "synthetic_scan.parquet"])["code"],
}
out["core_attempts"] = sorted(set(attempts))

# 3. commands that need an extra say which one (exit 2)
(tmp / "synthetic.h5").write_bytes(b"not read: h5py is missing")
(tmp / "synthetic.h5ad").write_bytes(b"not read: anndata is missing")
out["import-keras"] = run(["import-keras", "--keras", tmp / "synthetic.h5",
                           "-o", tmp / "synthetic_imported"])
out["xlsx"] = run(["predict", "-m", saved, "--regulators", expr.genes[0],
                   "-o", tmp / "synthetic.xlsx"])
out["h5ad"] = run(["build-pairs", "-x", tmp / "synthetic.h5ad",
                   "-i", tmp / "synthetic_pairs.tsv", "-o", tmp / "synthetic_pairs_sc"])
out["dask"] = run(["scan", "-m", saved, "-o", tmp / "synthetic_scan2.parquet",
                   "--scheduler", "local"])
out["serve"] = run(["serve", "--port", "8765"])
out["fast"] = run(["scan", "-m", saved, "-o", tmp / "synthetic_scan3.parquet",
                   "--engine", "numba"])
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def blocked_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The script above, run once with every optional package blocked."""
    tmp = tmp_path_factory.mktemp("synthetic_core_only")
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, ",".join(OPTIONAL), str(tmp)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**_env(), "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT"))


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("TFCNN_")}


@pytest.mark.slow
def test_core_commands_import_no_optional_package(blocked_run: dict) -> None:
    assert blocked_run["import_attempts"] == []  # not even a guarded import at module level
    # scan's default engine looks for numba when it runs, and uses PyTorch without it
    assert blocked_run["core_attempts"] == ["numba"]
    assert len(blocked_run["help"]) > 15
    assert {k: v for k, v in blocked_run["help"].items() if v != 0} == {}
    assert blocked_run["cli"] == {"build-pairs": 0, "scan": 0}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("import-keras", "keras"),
        ("xlsx", "web"),
        ("h5ad", "sc"),
        ("dask", "dask"),
        ("fast", "fast"),
    ],
)
def test_a_missing_extra_is_named(blocked_run: dict, case: str, extra: str) -> None:
    res = blocked_run[case]
    assert res["code"] == 2, res["output"]
    assert f"tfcnn[{extra}]" in " ".join(res["output"].split()), res["output"]


@pytest.mark.slow
def test_serve_names_the_web_extra(blocked_run: dict) -> None:
    res = blocked_run["serve"]
    assert res["code"] == 2, res["output"]
    assert "tfcnn[web]" in " ".join(res["output"].split()), res["output"]


def test_core_dependencies_leave_the_extras_out() -> None:
    project = PYPROJECT["project"]
    core = " ".join(project["dependencies"]).lower()
    for name in ("shiny", "openpyxl", "h5py", "dask", "anndata", "pytest", "ruff"):
        assert name not in core, name
    assert "platformdirs" in core
    extras = project["optional-dependencies"]
    for extra, modules in EXTRAS.items():  # each extra installs what tfcnn.extras names
        text = " ".join(extras[extra]).lower()
        assert all(m in text for m in modules), (extra, modules, text)
    (everything,) = extras["all"]
    assert set(everything.removeprefix("tfcnn[").removesuffix("]").split(",")) == set(EXTRAS)
    assert "test" not in extras and "dev" in PYPROJECT["dependency-groups"]
    assert PYPROJECT["build-system"]["requires"] == ["setuptools>=77"]


def test_one_version_source() -> None:
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "tfcnn.__version__"
    out = _tfcnn("--version")
    assert out.stdout.strip() == f"tfcnn {tfcnn.__version__}"


def _tfcnn(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tfcnn ARGS`` (so the module entry point is what is tested)."""
    return subprocess.run(
        [sys.executable, "-m", "tfcnn", *args],
        capture_output=True,
        text=True,
        env={**_env(), "COLUMNS": "200"},
        check=True,
    )


def test_python_m_tfcnn_and_shell_completion() -> None:
    helptext = _tfcnn("--help").stdout
    assert "Usage: python -m tfcnn" in helptext or "Usage: tfcnn" in helptext
    assert "--install-completion" in helptext and "--show-completion" in helptext


def test_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tfcnn.model.registry import data_home, user_models_dir

    monkeypatch.delenv("TFCNN_HOME", raising=False)
    expected = Path(platformdirs.user_data_dir("tfcnn", appauthor=False))
    assert data_home() == expected and user_models_dir() == expected / "models"
    assert expected != Path.home() / ".tfcnn"
    monkeypatch.setenv("TFCNN_HOME", str(tmp_path / "synthetic_home"))
    assert user_models_dir() == tmp_path / "synthetic_home" / "models"


@pytest.mark.slow
def test_the_wheel_holds_the_package_and_data_only(tmp_path: Path) -> None:
    """A wheel built from a copy of the checkout: tfcnn and its data, no tests or dev tools."""
    source = tmp_path / "source"  # a copy, so the build writes nothing into the checkout
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        env={**_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    (wheel,) = tmp_path.glob("tfcnn-*.whl")
    assert wheel.name.startswith(f"tfcnn-{tfcnn.__version__}-py3-none-any")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"tfcnn", f"tfcnn-{tfcnn.__version__}.dist-info"}, tops
    assert not [n for n in names if "/tests/" in n or n.split("/")[-1].startswith("test_")]
    assert "tfcnn/data/models/published-2019/model.json" in names
    meta = zipfile.ZipFile(wheel).read(f"tfcnn-{tfcnn.__version__}.dist-info/METADATA")
    text = meta.decode()
    assert "Provides-Extra: web" in text and "License-Expression: GPL-3.0-or-later" in text
    requires = [x for x in text.splitlines() if x.startswith("Requires-Dist:")]
    assert not [r for r in requires if "extra ==" not in r and ("shiny" in r or "h5py" in r)]
    assert not [r for r in requires if "pytest" in r or "ruff" in r or "mypy" in r]
