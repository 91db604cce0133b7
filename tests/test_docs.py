"""The documentation (issue 19): no machine paths in the docs or the built site, the
generated CLI and API references cover the app, the site builds with warnings as errors,
and the tutorial notebook is the one its generator writes."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: An absolute path of some machine: a home, a work or scratch folder, a temp folder.
MACHINE_PATH = re.compile(
    r"(?<![\w.~-])(/(?:work|home|tmp|root|Users|opt|mnt|srv|scratch|private/var)/[^\s`'\")<]*"
    r"|[A-Za-z]:\\Users\\)"
)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine_paths(text: str) -> list[str]:
    """The machine paths (``/work/...``, ``/home/...``, ``/tmp/...``) in ``text``."""
    return [m.group(0) for m in MACHINE_PATH.finditer(text)]


def test_the_pattern_finds_machine_paths() -> None:
    assert machine_paths("see `/work/shared/README.md` and /home/ann/x.tsv") == [
        "/work/shared/README.md",
        "/home/ann/x.tsv",
    ]
    assert machine_paths("written to /tmp/out.png") == ["/tmp/out.png"]
    assert machine_paths("results/demo, ~/.local/share/tfcnn, a/work/b, ./tmp/x") == []


def test_no_machine_paths_in_the_docs_sources() -> None:
    sources = [*DOCS.rglob("*.md"), *DOCS.rglob("*.ipynb")]
    sources += [ROOT / n for n in ("README.md", "CHANGELOG.md", "CITATION.cff", "mkdocs.yml")]
    assert len(sources) > 10
    found = {str(p.relative_to(ROOT)): machine_paths(p.read_text("utf-8")) for p in sources}
    assert {k: v for k, v in found.items() if v} == {}


def test_cli_reference_covers_every_command() -> None:
    import typer

    from tfcnn.apps.cli import app

    page = _load("docs_hooks", ROOT / "scripts" / "docs_hooks.py").cli_markdown()
    group = typer.main.get_command(app)
    stack, names = [(("tfcnn",), group)], []
    while stack:
        path, cmd = stack.pop()
        names.append(" ".join(path))
        stack += [((*path, n), c) for n, c in getattr(cmd, "commands", {}).items()]
    assert len(names) > 20
    missing = [n for n in names if f"# `{n}`\n" not in page]
    assert missing == []
    assert "| `--negatives` |" in page and "degree-matched" in page
    assert "`--install-completion`" in page


def test_api_reference_lists_the_public_api() -> None:
    import tfcnn

    page = _load("docs_hooks", ROOT / "scripts" / "docs_hooks.py").api_markdown()
    for name in tfcnn.__all__:
        if name != "__version__":
            assert f"### `tfcnn.{name}`" in page and f".{name}\n" in page, name


def test_tutorial_is_what_its_generator_writes() -> None:
    nbformat = pytest.importorskip("nbformat")
    generator = _load("make_tutorial", ROOT / "scripts" / "make_tutorial.py")
    stored = nbformat.read(DOCS / "tutorial.ipynb", as_version=4)
    nbformat.validate(stored)
    built = generator.build()
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in built.cells
    ]  # rerun scripts/make_tutorial.py after editing its cells
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code")
    assert "TFCNN_TUTORIAL_EPOCHS" in stored.cells[1].source


@pytest.mark.slow
def test_site_builds_strict_without_machine_paths(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-4000:]
    pages = [p for p in site.rglob("*") if p.suffix in (".html", ".json", ".xml", ".txt")]
    found = {
        str(p.relative_to(site)): machine_paths(p.read_text("utf-8", errors="replace"))
        for p in pages
    }
    assert {k: v for k, v in found.items() if v} == {}
    cli = (site / "reference" / "cli.html").read_text("utf-8")
    assert "tfcnn build-pairs" in cli and "tfcnn explain pair" in cli
    api = (site / "reference" / "api.html").read_text("utf-8")
    assert "build_pairs" in api and "PairCNN" in api and "Metrics of" in api  # docstrings
    concepts = (site / "concepts.html").read_text("utf-8")
    assert "target-freq. control AUROC" in concepts and "--8&lt;--" not in concepts
    assert (site / "tutorial.ipynb").is_file()
