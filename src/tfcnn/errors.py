"""User-facing errors: bad input that the user can fix.

Every error raised for bad input is a :class:`TfcnnInputError`; the CLI prints its
message (which names the file, line or ID and what to do) and exits with code 2.
Anything else escaping the library is a bug in tfcnn.
"""

from __future__ import annotations


class TfcnnInputError(ValueError):
    """Bad input: a file, an ID, an option. The message says what and how to fix it."""


class ModelFormatError(TfcnnInputError):
    """A model file that is not a valid tfcnn model (wrong format, shapes or version)."""


class OutputExistsError(TfcnnInputError):
    """An output already exists and ``force`` was not given."""
