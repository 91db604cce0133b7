"""Pair sets: labelled (TF, target) examples, their negatives and their splits.

* :mod:`.pairset`: :class:`PairSet` (the examples, saved and read back);
* :mod:`.negatives`: the negative strategies (random, tf-matched, degree-matched);
* :mod:`.splits`: train / validation / test splits and TF-grouped folds;
* :mod:`.build`: :func:`build_pair_set`, from a matrix and known interactions.
"""

from .build import align_interactions, build_pair_set, build_tf_folds
from .negatives import NEGATIVE_STRATEGIES
from .pairset import SPLITS, PairSet
from .splits import SPLIT_STRATEGIES, tf_group_folds

__all__ = [
    "NEGATIVE_STRATEGIES",
    "SPLITS",
    "SPLIT_STRATEGIES",
    "PairSet",
    "align_interactions",
    "build_pair_set",
    "build_tf_folds",
    "tf_group_folds",
]
