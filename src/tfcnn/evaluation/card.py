"""A model card in one line: the honest figure beside its protocol.

Kept apart from :mod:`tfcnn.evaluation.evaluate` (which imports scikit-learn) so that
commands which only print a model's card (`scan`, `models`) start quickly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def card_line(card: Mapping[str, Any] | None) -> str:
    """One line for model lists and pages: the honest figure beside the protocol."""
    if not card or card.get("within_target_auroc") is None:
        return "not evaluated under a protocol with node-identity controls"
    p = card["protocol"]
    low, high = card.get("difference_ci") or [None, None]
    margin = (
        f"; vs best control {card['difference_within_target']:+.3f} "
        f"(95% CI {low:+.3f} to {high:+.3f})"
        if card.get("difference_within_target") is not None and low is not None
        else ""
    )
    return (
        f"within-target AUROC {card['within_target_auroc']:.3f} "
        f"({p.get('split')} split, {p.get('negatives')} negatives){margin}"
    )
