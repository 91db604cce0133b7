"""The matrix a model scores on: one loader, one rule for its sample columns.

A model reads a profile column by column, so a matrix to score on must hold the model's
training samples in the model's order. When the model records its sample names (every
model tfcnn trains), columns are matched by name: put in the model's order, extra
columns left out (with a note), missing ones refused (named). When it records none (the
bundled ``published-2019``, imported from Keras files), the columns are used by position
once their number matches, with the model's caveat as a note. Without a matrix, the
model's own z-scored training matrix is used. ``tfcnn predict``, ``scan``, ``explain``
and the web app all load their matrix here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TfcnnInputError
from ..io.expression import ExpressionMatrix, load_expression
from ..io.ids import normalize_id
from ..model.stored import StoredCNN

if TYPE_CHECKING:
    from ..model.estimator import PairCNN

OWN_MATRIX = "the model's own matrix"


@dataclass(frozen=True)
class ScoringMatrix:
    """Z-scores (genes x samples, float32, in the model's sample order) and their names."""

    zscores: np.ndarray
    genes: list[str]
    samples: list[str]
    source: str  # the file, or OWN_MATRIX
    notes: list[str] = field(default_factory=list)  # what the user should know (columns)

    @cached_property
    def index(self) -> dict[str, int]:
        """Row of each gene ID."""
        return {g: i for i, g in enumerate(self.genes)}

    def pair(self, tf: str, target: str) -> tuple[np.ndarray, str, str]:
        """The (2, n_samples) profiles of two genes and their normalised IDs.

        Unknown IDs are refused, naming them.
        """
        tf_id, target_id = normalize_id(tf), normalize_id(target)
        missing = [g for g in (tf_id, target_id) if g not in self.index]
        if missing:
            raise TfcnnInputError(
                f"{', '.join(missing)} not found among the {len(self.genes):,} genes of "
                f"{self.source}; check the ID (AGI codes such as AT1G01010) or give "
                "`expression` with a matrix that has it."
            )
        x = np.stack([self.zscores[self.index[tf_id]], self.zscores[self.index[target_id]]])
        return x, tf_id, target_id


def scoring_matrix(
    model: PairCNN | StoredCNN,
    expression: ExpressionMatrix | str | os.PathLike[str] | None = None,
    *,
    log2: bool = False,
    name: str = "",
) -> ScoringMatrix:
    """The matrix ``model`` scores on: ``expression`` (a matrix, file or bundled name)
    lined up with the model's samples, or the model's own (see the module docstring).

    ``log2`` applies to an ``expression`` file; ``name`` (a path or registered name)
    names the model in messages.
    """
    record = model.record_
    if expression is None:
        if log2:
            raise TfcnnInputError(
                "`log2` applies to `expression`; the model's own matrix is already z-scored."
            )
        if record.zscores is None:
            raise TfcnnInputError(
                f"{_model(name)} carries no expression matrix; pass `expression` with a matrix of "
                f"its {model.n_samples} samples."
            )
        return ScoringMatrix(
            _float32(record.zscores), list(record.genes), list(record.samples), OWN_MATRIX
        )
    expr = load_expression(expression, log2=log2)
    if record.samples:
        expr, notes = _by_name(expr, list(record.samples))
    else:
        notes = _by_position(expr, model, name)
    return ScoringMatrix(
        _float32(expr.zscored()), list(expr.genes), list(expr.samples), expr.source, notes
    )


def _by_name(expr: ExpressionMatrix, samples: list[str]) -> tuple[ExpressionMatrix, list[str]]:
    """``expr`` with exactly the model's ``samples``, in its order (found by name)."""
    have = set(expr.samples)
    missing = [s for s in samples if s not in have]
    if missing:
        shown = ", ".join(repr(s) for s in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise TfcnnInputError(
            f"{expr.source} lacks {len(missing)} of the model's {len(samples)} samples "
            f"({shown}); the model scores profiles over exactly its training samples, found "
            "by name: give a matrix with those sample columns."
        )
    notes = []
    wanted = set(samples)
    extra = [s for s in expr.samples if s not in wanted]
    if extra:
        shown = ", ".join(repr(s) for s in extra[:5]) + (" ..." if len(extra) > 5 else "")
        notes.append(
            f"{len(extra)} column(s) of {expr.source} are not samples of the model and are "
            f"not used: {shown}."
        )
    if list(expr.samples) != samples:
        expr = expr.select_samples(samples)
    return expr, notes


def _by_position(expr: ExpressionMatrix, model: PairCNN | StoredCNN, name: str) -> list[str]:
    """Notes for a model without sample names; a matrix of another width is refused."""

    if expr.n_samples != model.n_samples:
        raise TfcnnInputError(
            f"{expr.source} has {expr.n_samples} samples but the model takes "
            f"{model.n_samples}; {_model(name)} records no sample names, so give a matrix of its "
            "samples in its order."
        )
    notes = [
        f"{_model(name)} records no sample names: the {expr.n_samples} columns of "
        f"{expr.source} are read by position. Check that they are its samples in its order, "
        "or the scores are meaningless."
    ]
    caveat = model.record_.caveat
    if caveat:
        notes.append(f"CAVEAT ({name or 'the model'}): {caveat}")
    return notes


def _model(name: str) -> str:
    return f"model {name}" if name else "the model"


def _float32(z: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(z, dtype=np.float32)
