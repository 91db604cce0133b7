"""Gene identifier conventions shared by every loader.

Arabidopsis Genome Initiative (AGI) locus codes (``AT1G01010``) are compared
upper-cased and trimmed; other identifiers (ATH1 probesets such as ``261585_at``)
are only trimmed, because their case is significant.
"""

from __future__ import annotations

import re

import numpy as np

AGI_PATTERN = re.compile(r"^AT[1-5CM]G\d{5}$")
_AGI_LOOSE = re.compile(r"^at[1-5cm]g\d{5}$", re.IGNORECASE)
# Things that look like an AGI code but are malformed (wrong digit count etc.).
_AGI_LIKE = re.compile(r"^at[1-5cm]g\d+$", re.IGNORECASE)
PROBESET_PATTERN = re.compile(r"^\d{6}(_[a-z])?_at$|^AFFX-", re.IGNORECASE)


def normalize_id(raw: str) -> str:
    """Trim an identifier and upper-case it when it is an AGI code."""
    text = str(raw).strip()
    if _AGI_LOOSE.match(text):
        return text.upper()
    return text


def is_agi(identifier: str) -> bool:
    """True for a well-formed AGI locus code (after :func:`normalize_id`)."""
    return bool(AGI_PATTERN.match(identifier))


def looks_like_agi(identifier: str) -> bool:
    """True for anything shaped like an AGI code, well-formed or not (``AT5G286660``)."""
    return bool(_AGI_LIKE.match(identifier.strip()))


def is_probeset(identifier: str) -> bool:
    """True for an Affymetrix ATH1 probeset name (``261585_at``, ``AFFX-...``)."""
    return bool(PROBESET_PATTERN.match(identifier.strip()))


def id_namespace(ids: list[str] | np.ndarray) -> str:
    """Guess the namespace of a list of IDs: ``"agi"``, ``"probeset"`` or ``"other"``.

    The majority (more than half) decides; used to decide whether an ID map is needed.
    """
    ids = list(ids)
    if not ids:
        return "other"
    n_agi = sum(is_agi(normalize_id(i)) for i in ids)
    n_probe = sum(is_probeset(i) for i in ids)
    if n_agi * 2 > len(ids):
        return "agi"
    if n_probe * 2 > len(ids):
        return "probeset"
    return "other"
