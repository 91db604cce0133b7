"""Tiny models trained on synthetic planted data, for the predict / web app tests.

Nothing here is real: profiles come from :func:`tests.synthetic.planted_dataset`. With
``agi=True`` the synthetic genes are *named* after real AGI loci of the bundled ATH1
map, so that ID mapping (AGI <-> probeset) can be exercised; the profiles and the
"interactions" between them are still synthetic.
"""

from __future__ import annotations

from pathlib import Path

from tests.synthetic import planted_dataset, write_pairs, write_tsv
from tfcnn import api
from tfcnn.io.datasets import resolve_path
from tfcnn.io.idmap import read_id_map
from tfcnn.io.interactions import from_pairs


def train_synthetic_model(
    folder: Path, agi: bool = False, seed: int = 0, two_tower: bool = False
) -> Path:
    """Write a synthetic matrix + pairs under ``folder`` and train a tiny model on them
    (the pair CNN, or with ``two_tower`` a tiny two-tower model).

    Returns the model directory (``folder / "model"``). The pairs file stays in place, so
    the model can tell which queried pairs were training interactions.
    """
    folder.mkdir(parents=True, exist_ok=True)
    expr, inter = planted_dataset(
        n_tfs=6, targets_per_tf=15, n_background=60, n_samples=16, seed=seed
    )
    if agi:
        id_map = read_id_map(resolve_path("ath1-map"))
        loci = sorted(id_map.agi_to_probeset)[: expr.n_genes]
        mapping = dict(zip(expr.genes, loci, strict=True))
        expr = expr.rename(mapping)
        inter = from_pairs(
            sorted((mapping[t], mapping[g]) for t, g in inter.as_set()),
            source="synthetic planted pairs (AGI-named)",
        )
    write_tsv(expr, folder / "synthetic_expression.tsv")
    write_pairs(inter, folder / "synthetic_pairs.tsv")
    pairs = api.build_pairs(
        folder / "synthetic_expression.tsv", folder / "synthetic_pairs.tsv", seed=seed
    )
    if two_tower:
        small = dict(hidden=16, embed_dim=4, head_hidden=8, max_epochs=2, min_epochs=1, n_seeds=1)
        api.train(pairs, output=folder / "model", architecture="two-tower", seed=seed, **small)
    else:
        api.train(
            pairs,
            output=folder / "model",
            seed=seed,
            epochs=4,
            filters=(2, 4),
            units=4,
            batch_size=64,
        )
    return folder / "model"


def planted_pairs(folder: Path) -> set[tuple[str, str]]:
    """The synthetic training interactions written by :func:`train_synthetic_model`."""
    return api.load_interactions(folder / "synthetic_pairs.tsv").as_set()
