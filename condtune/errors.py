"""The project's error types, in one leaf module that imports nothing of condtune, so that every
layer (io at the bottom up to the commands) can raise and catch them without importing the module
that once defined them. The old homes re-export them: ``condtune.config.ConfigError`` and
``condtune.artifacts.ArtifactError`` are these classes."""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A config file or command-line override that does not fit the recipe's dataclass."""


class DataError(ValueError):
    """Bad input data; the message names the file, row and column."""

    def __init__(self, path: str | Path, message: str, *, row: int | None = None, column: str | None = None):
        self.path, self.row, self.column = str(path), row, column
        where = str(path)
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


class ArtifactError(DataError):
    """A saved scorer, policy or model folder with a missing or corrupt file; the message names it."""


class ArtifactMissing(ArtifactError, FileNotFoundError):
    """A file a saved folder needs is not there (also a ``FileNotFoundError``, as before)."""
