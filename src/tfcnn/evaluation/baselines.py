"""Scores that need no training, computed on exactly the pairs a model is tested on."""

from __future__ import annotations

import numpy as np
import pandas as pd


def pearson_scores(x: np.ndarray) -> np.ndarray:
    """Pearson correlation of the TF and target profile of each pair, shape (N,).

    ``x`` is (N, 2, S); rows need not be z-scored. Constant rows give 0.
    """
    a = np.asarray(x[:, 0, :], dtype=np.float64)
    b = np.asarray(x[:, 1, :], dtype=np.float64)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    num = (a * b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 0.0)
    return r


def target_frequency_scores(train_positive_targets: pd.Series, targets: pd.Series) -> np.ndarray:
    """How often each target was a positive's target in training: a no-expression control.

    If this scores well, a model can too by recognising frequently regulated ("hub")
    targets rather than reading the TF/target relation in the profiles.
    """
    counts = train_positive_targets.value_counts()
    return targets.map(counts).fillna(0).to_numpy(dtype=np.float64)


# -- further baselines and controls (the study, tfcnn.study) ----------------------------
def spearman_scores(x: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of the TF and target profile of each pair, shape (N,).

    Pearson correlation of the within-row ranks (ties get their average rank).
    """
    from scipy.stats import rankdata

    ranks = np.stack([rankdata(x[:, 0, :], axis=1), rankdata(x[:, 1, :], axis=1)], axis=1).astype(
        np.float64
    )
    return pearson_scores(ranks)


def absolute_correlation_scores(x: np.ndarray) -> np.ndarray:
    """|Pearson r|: activation and repression both count as co-expression."""
    return np.abs(pearson_scores(x))


def correlation_features(x: np.ndarray) -> np.ndarray:
    """Per pair: Pearson r, Spearman rho, |r|, |rho|, shape (N, 4)."""
    r, rho = pearson_scores(x), spearman_scores(x)
    return np.column_stack([r, rho, np.abs(r), np.abs(rho)])


def logistic_correlation_scores(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Logistic regression on :func:`correlation_features`, fit on the training pairs.

    Returns the probability of the positive class for ``x_test``.
    """
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=1000, random_state=seed)
    model.fit(correlation_features(x_train), np.asarray(y_train))
    return model.predict_proba(correlation_features(x_test))[:, 1]


def neighbour_transfer_scores(
    zscores: np.ndarray,
    train_tf: np.ndarray,
    train_target: np.ndarray,
    train_label: np.ndarray,
    tf: np.ndarray,
    target: np.ndarray,
    block: int = 2048,
) -> np.ndarray:
    """A relational baseline that learns nothing: does the pair's TF look like the
    target's known regulators?

    For a pair (x, g): the mean Pearson r of x's profile with the training TFs labelled
    as regulating g, minus the mean with the training TFs labelled as not regulating g
    (a side with no such TF counts 0). Inputs are row indices into ``zscores`` (genes x
    samples): the training pairs with their labels, and the pairs to score. It reads only
    the relation between the two genes (which TFs share targets with TFs like x), never
    one gene's identity, so it is what a pair model that maps similar TF profiles to
    similar targets can learn: a yardstick for the two-tower model under TF hold-out.
    Targets are handled ``block`` at a time, so memory stays at TFs x ``block``.
    """
    from scipy import sparse

    from ..inference.expand import unit_rows

    z = np.asarray(zscores, dtype=np.float64)
    train_tf, train_target = np.asarray(train_tf), np.asarray(train_target)
    label = np.asarray(train_label).astype(bool)
    tf, target = np.asarray(tf), np.asarray(target)
    out = np.zeros(len(tf), dtype=np.float64)
    if len(tf) == 0 or len(train_tf) == 0:
        return out
    refs, ref_col = np.unique(train_tf, return_inverse=True)
    queries, query_row = np.unique(tf, return_inverse=True)
    genes, gene_col = np.unique(np.concatenate([train_target, target]), return_inverse=True)
    train_gene, test_gene = gene_col[: len(train_target)], gene_col[len(train_target) :]
    similarity = unit_rows(z[queries]) @ unit_rows(z[refs]).T  # (query TFs, training TFs)
    weights = np.zeros(len(train_tf))
    for side, sign in ((label, 1.0), (~label, -1.0)):
        counts = np.bincount(train_gene[side], minlength=len(genes))
        weights[side] = sign / counts[train_gene[side]]
    # (training TFs x genes): +1/|regulators of g| and -1/|non-regulators of g|
    w = sparse.csc_matrix((weights, (ref_col, train_gene)), shape=(len(refs), len(genes)))
    for lo in range(0, len(genes), block):
        hi = min(len(genes), lo + block)
        mine = np.flatnonzero((test_gene >= lo) & (test_gene < hi))
        if mine.size:
            m = np.asarray((w[:, lo:hi].T @ similarity.T).T)  # (query TFs, genes of block)
            out[mine] = m[query_row[mine], test_gene[mine] - lo]
    return out


def single_profile_scores(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    row: int,
    seed: int = 0,
    hidden: int = 32,
    max_iter: int = 30,
) -> np.ndarray:
    """A control that sees one profile only: row 0 (TF-only) or row 1 (target-only).

    A small multilayer perceptron (scikit-learn ``MLPClassifier``, one hidden layer of
    ``hidden`` ReLU units, Adam, ``max_iter`` epochs, seeded) on that z-scored profile.
    It cannot read any TF/target relation, so whatever it scores comes from recognising
    which genes are (frequent) TFs or targets. Returns positive-class probabilities.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=(hidden,),
        max_iter=max_iter,
        random_state=seed,
        batch_size=min(256, len(x_train)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(np.asarray(x_train[:, row, :], dtype=np.float64), np.asarray(y_train))
    return model.predict_proba(np.asarray(x_test[:, row, :], dtype=np.float64))[:, 1]


def genie3_importances(
    zscores: np.ndarray,
    regulators: np.ndarray,
    targets: np.ndarray,
    seed: int = 0,
    n_estimators: int = 50,
) -> np.ndarray:
    """GENIE3-style scores, shape (len(regulators), len(targets)).

    For each target gene (row index in ``zscores``, genes x samples), a scikit-learn
    ``ExtraTreesRegressor`` (``n_estimators`` trees, ``max_features="sqrt"``, seeded)
    predicts the target's profile across samples from the profiles of the candidate
    ``regulators`` (the target itself excluded, as GENIE3 does); the score of
    (regulator, target) is that regulator's impurity-based feature importance. It uses
    expression only, never the labels. A pair whose regulator is not a candidate has no
    GENIE3 score; callers give it 0 (GENIE3 never ranks it).
    """
    from sklearn.ensemble import ExtraTreesRegressor

    z = np.asarray(zscores, dtype=np.float64)
    regulators = np.asarray(regulators, dtype=np.int64)
    out = np.zeros((regulators.size, len(targets)), dtype=np.float64)
    for k, target in enumerate(np.asarray(targets, dtype=np.int64).tolist()):
        use = regulators != target
        if use.sum() == 0:
            continue
        model = ExtraTreesRegressor(
            n_estimators=n_estimators, max_features="sqrt", random_state=seed + target
        )
        model.fit(z[regulators[use]].T, z[target])
        out[use, k] = model.feature_importances_
    return out
