"""Registry of the real public data files bundled with tfcnn.

The files live in ``tfcnn/data`` (package data), so a fresh install works without
network access. Origins, citations and licences are in ``data/PROVENANCE.md``; the
same facts are summarised here so code (and the CLI) can show them.

Command-line options that take a file also accept a bundled name through
:func:`resolve_path`: ``bundled:atregnet`` or just ``atregnet``.
"""

from __future__ import annotations

import importlib.resources
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import TfcnnInputError

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"

_OUTPREDICT = (
    "Nitrogen-response compendium distributed with OutPredict (Cirrone et al. 2020, "
    "BMC Bioinformatics)"
)


@dataclass(frozen=True)
class Dataset:
    """One bundled data file: where it is, what it holds, where it came from."""

    name: str
    relpath: str
    description: str
    source: str
    licence: str

    @property
    def path(self) -> Path:
        """Filesystem path of the bundled file (inside the installed package)."""
        res = importlib.resources.files("tfcnn").joinpath("data", *self.relpath.split("/"))
        return Path(str(res))

    @property
    def size_bytes(self) -> int:
        """Size of the file on disk, in bytes."""
        return self.path.stat().st_size


DATASETS: dict[str, Dataset] = {
    ds.name: ds
    for ds in [
        Dataset(
            name="atregnet",
            relpath="atregnet/AtRegNet.tsv",
            description=(
                "AtRegNet TF -> target interactions (tab separated, Latin-1, quoted fields "
                "spanning lines); confirmed direct rows give 4,344 pairs from 280 TFs"
            ),
            source=(
                "AGRIS knowledgebase, file AtRegNet.zip (Palaniswamy et al. 2006, "
                "Plant Physiology 140:818)"
            ),
            licence="see source (AGRIS)",
        ),
        Dataset(
            name="tf-list",
            relpath="arabidopsis/Ath_TF_list.tsv",
            description="Arabidopsis transcription factor list (TF_ID, Gene_ID, Family)",
            source="PlantTFDB",
            licence="see source (PlantTFDB)",
        ),
        Dataset(
            name="arabidopsis-loci",
            relpath="arabidopsis/all_agis.txt",
            description=(
                "Protein-coding AGI loci used as candidate targets, one per line "
                "(as published: the file repeats some codes)"
            ),
            source="candidate-target list of the original study (origin not recorded further)",
            licence="see source",
        ),
        Dataset(
            name="ath1-map",
            relpath="arabidopsis/ath1_probeset_to_agi.csv",
            description=(
                "19,966 one-to-one pairs locus,array_element_name linking AGI codes to "
                "Affymetrix ATH1-121501 probesets"
            ),
            source=(
                "recovered from the original study's published genome-wide prediction "
                "tables; canonical source TAIR affy_ATH1_array_elements-2010-12-20.txt"
            ),
            licence="see source (TAIR)",
        ),
        Dataset(
            name="atgenexpress-samples",
            relpath="arabidopsis/atgenexpress_cel_files.csv",
            description=(
                "Sample sheet of the AtGenExpress abiotic-stress .cel files: 284 rows, "
                "284 distinct GSM ids (some without treatment/tissue/time)"
            ),
            source="NCBI GEO series GSE33790, GSE33996, GSE5620-GSE5628",
            licence="see source (NCBI GEO)",
        ),
        Dataset(
            name="nitrogen-expression",
            relpath="nitrogen_compendium/expression.tsv",
            description=(
                "Expression matrix, 2,286 genes (AGI codes) x 131 conditions, log2 scale, "
                "steady-state (SS_*) and time-series (TS_*) conditions"
            ),
            source=_OUTPREDICT,
            licence="GPL-3 (OutPredict)",
        ),
        Dataset(
            name="nitrogen-meta",
            relpath="nitrogen_compendium/meta_data.tsv",
            description="Condition metadata (isTs, is1stLast, prevCol, del.t, condName)",
            source=_OUTPREDICT,
            licence="GPL-3 (OutPredict)",
        ),
        Dataset(
            name="nitrogen-tfs",
            relpath="nitrogen_compendium/tf_names.tsv",
            description="The 263 TFs of the nitrogen compendium, one quoted AGI code per line",
            source=_OUTPREDICT,
            licence="GPL-3 (OutPredict)",
        ),
        Dataset(
            name="nitrogen-gold-standard",
            relpath="nitrogen_compendium/gold_standard.tsv",
            description="Gold standard as distributed: genes x TFs 0/1 matrix",
            source=_OUTPREDICT,
            licence="GPL-3 (OutPredict)",
        ),
        Dataset(
            name="nitrogen-edges",
            relpath="nitrogen_compendium/connectf_edges.tsv",
            description=(
                "ConnecTF-validated TF -> target edges (tf, target, evidence) reduced to the "
                "2,286 compendium genes: 59,525 edges from 100 TFs; evidence DAPSeq, "
                "CHIPSeq, TARGET, Litterature"
            ),
            source=(
                "ConnecTF (Brooks et al. 2021) as collected by AraNetBench, reduced to the "
                "nitrogen compendium genes"
            ),
            licence="GPL-3 (AraNetBench)",
        ),
        Dataset(
            name="published-keras-model",
            relpath="published_model/convnet_model.hdf5",
            description=(
                "The final pair CNN published with MacLean 2019 (Keras 2.2.0 HDF5, input "
                "2 x 232); imported as the bundled model published-2019"
            ),
            source="published with MacLean D. (2019), bioRxiv 618926",
            licence="see source (published with the study)",
        ),
        Dataset(
            name="published-tuning-runs",
            relpath="published_model/tuning_runs.csv",
            description=(
                "The study's log of its 96 regularisation tuning runs (source of its Table 1; "
                "top validation accuracy 0.9568)"
            ),
            source="published with MacLean D. (2019), bioRxiv 618926",
            licence="see source (published with the study)",
        ),
    ]
}


def _lookup(name: str) -> Dataset:
    key = name.strip().lower()
    if key not in DATASETS:
        known = ", ".join(sorted(DATASETS))
        raise TfcnnInputError(f"Unknown bundled dataset {name!r}; known datasets: {known}.")
    return DATASETS[key]


def dataset_path(name: str) -> Path:
    """Path of the bundled file registered as ``name``.

    Raises :class:`TfcnnInputError` for an unknown name (listing the known ones) and
    when the file is missing from the installation.
    """
    ds = _lookup(name)
    path = ds.path
    if not path.is_file():
        raise TfcnnInputError(
            f"Bundled dataset {ds.name!r} is missing from the installation ({path}); "
            "reinstall tfcnn (pip install -e .) so its package data is present."
        )
    return path


def list_datasets() -> list[Dataset]:
    """All registered datasets, sorted by name."""
    return [DATASETS[name] for name in sorted(DATASETS)]


def resolve_path(value: str | os.PathLike[str]) -> Path:
    """Turn a CLI file argument into a path; bundled names are accepted.

    ``bundled:NAME`` always means the bundled file (unknown NAME is an error). A bare
    registered NAME also means the bundled file, unless a file of that name exists in
    the working directory: the user's own file wins, with a warning. Anything else is
    returned as a filesystem path, unchecked (the reader reports a missing file).
    """
    text = os.fspath(value)
    if text.startswith(BUNDLED_PREFIX):
        return dataset_path(text[len(BUNDLED_PREFIX) :])
    if text.strip().lower() in DATASETS:
        if Path(text).exists():
            log.warning(
                "%r is both a local file and a bundled dataset name; using the local file "
                "(write %s%s for the bundled one).",
                text,
                BUNDLED_PREFIX,
                text.strip().lower(),
            )
            return Path(text)
        return dataset_path(text)
    return Path(text)
