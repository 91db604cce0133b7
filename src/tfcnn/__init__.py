"""tfcnn: predict transcription factor -> target regulation with a small pair CNN."""

from __future__ import annotations

__version__ = "0.1.0"
