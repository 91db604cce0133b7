"""Gene identifier conventions shared by every loader.

Arabidopsis Genome Initiative (AGI) locus codes (``AT1G01010``) are compared
upper-cased and trimmed; other identifiers (ATH1 probesets such as ``261585_at``)
are only trimmed, because their case is significant.
"""

from __future__ import annotations

import re

import numpy as np

# re.ASCII: only the digits 0-9 and ASCII case folding count (Python's \d would accept
# any Unicode digit, "AT1G\uff10\uff11\uff10\uff11\uff10"); \Z, not $, so a trailing
# newline is not accepted either.
AGI_PATTERN = re.compile(r"^AT[1-5CM]G[0-9]{5}\Z", re.ASCII)
_AGI_LOOSE = re.compile(r"^at[1-5cm]g[0-9]{5}\Z", re.IGNORECASE | re.ASCII)
# Things that look like an AGI code but are malformed (wrong digit count etc.).
_AGI_LIKE = re.compile(r"^at[1-5cm]g[0-9]+\Z", re.IGNORECASE | re.ASCII)
PROBESET_PATTERN = re.compile(r"^[0-9]{6}(_[a-z])?_at\Z|^AFFX-", re.IGNORECASE | re.ASCII)


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
