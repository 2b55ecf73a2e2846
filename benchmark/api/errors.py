"""The project's exceptions. Every message names what was wrong, the value received, the valid options and the fix."""

from __future__ import annotations


class ImiBenchError(Exception):
    """Base class of every error the project raises for a user's mistake or an unavailable resource."""


class ConfigError(ImiBenchError, ValueError):
    """A configuration value (CLI flag, spec field, parameter) is invalid."""


class RegistryError(ImiBenchError, KeyError):
    """A registry lookup or registration failed (unknown or duplicate name)."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0]) if self.args else ""


class DataValidationError(ImiBenchError, ValueError):
    """A data table does not satisfy its schema (missing column, wrong type, out-of-range value, duplicate)."""


class SourceUnavailableError(ImiBenchError, OSError):
    """A data or model source cannot be reached (offline, missing files, unknown id)."""


class ChecksumError(ImiBenchError, ValueError):
    """A downloaded or local file does not match its expected checksum."""


class NotFittedError(ImiBenchError, RuntimeError):
    """An estimator was used before `fit` was called."""
