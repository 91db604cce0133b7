"""Bundled data registry: every file present, names resolved, provenance complete."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tfcnn.errors import TfcnnInputError
from tfcnn.io.datasets import DATASETS, Dataset, dataset_path, list_datasets, resolve_path

DATA_DIR = Path(__file__).resolve().parents[1] / "src" / "tfcnn" / "data"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_registered_file_exists_and_is_not_empty(name: str) -> None:
    ds = DATASETS[name]
    assert ds.name == name
    path = dataset_path(name)
    assert path == ds.path and path.is_file()
    assert ds.size_bytes == path.stat().st_size > 0
    assert ds.description and ds.source and ds.licence


def test_every_bundled_file_is_registered_and_documented() -> None:
    on_disk = {
        p.relative_to(DATA_DIR).as_posix()
        for p in DATA_DIR.rglob("*")
        if p.is_file()
        and p.name != "PROVENANCE.md"
        and "__pycache__" not in p.parts
        and p.relative_to(DATA_DIR).parts[0] != "models"  # bundled models: tfcnn.model.registry
    }
    assert on_disk == {ds.relpath for ds in DATASETS.values()}
    provenance = (DATA_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    for ds in DATASETS.values():
        assert Path(ds.relpath).name in provenance, ds.relpath
        assert f"`{ds.name}`" in provenance, ds.name


def test_list_datasets_sorted_and_complete() -> None:
    listed = list_datasets()
    assert [d.name for d in listed] == sorted(DATASETS)
    assert all(isinstance(d, Dataset) for d in listed)


def test_contents_match_the_reference_notes() -> None:
    with dataset_path("atregnet").open(encoding="latin-1") as fh:
        assert fh.readline().split("\t")[:2] == ["TFName", "TFLocus"]
    lines = dataset_path("ath1-map").read_text().splitlines()
    assert lines[0] == "locus,array_element_name" and len(lines) == 1 + 19966
    edges = dataset_path("nitrogen-edges").read_text().splitlines()
    assert edges[0] == "tf\ttarget\tevidence" and len(edges) == 1 + 59525


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(TfcnnInputError, match="nitrogen-expression") as err:
        dataset_path("atregnett")
    assert "atregnett" in str(err.value)


def test_resolve_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    atregnet = dataset_path("atregnet")
    assert resolve_path("bundled:atregnet") == atregnet
    assert resolve_path("atregnet") == atregnet
    assert resolve_path("ATRegNet") == atregnet
    assert resolve_path("my/table.tsv") == Path("my/table.tsv")
    assert resolve_path(Path("x.csv")) == Path("x.csv")
    with pytest.raises(TfcnnInputError, match="Unknown bundled dataset 'nope'"):
        resolve_path("bundled:nope")


def test_resolve_path_prefers_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tf-list").write_text("mine\n")
    with caplog.at_level(logging.WARNING, logger="tfcnn.io.datasets"):
        assert resolve_path("tf-list") == Path("tf-list")
    assert "bundled:tf-list" in caplog.text
    assert resolve_path("bundled:tf-list") == dataset_path("tf-list")
