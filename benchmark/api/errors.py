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


# The fix named when a model's weights cannot be fetched (offline or unreachable hub); operators and local users only.
OFFLINE_WEIGHTS_FIX = (
    "Fix: pass a local weights file (local:/path/weights.safetensors?arch=SOURCE:ARCH, or weights=PATH), or "
    "pre-populate the library's cache by loading the model once where the network is reachable (Hugging Face cache: "
    "HF_HOME / HF_HUB_CACHE; torchvision: TORCH_HOME), or unset HF_HUB_OFFLINE if this machine is online."
)
# What a public submitter is told instead: they cannot name files on the server.
PUBLIC_WEIGHTS_FIX = (
    "The server could not fetch these weights from the Hub: check the model id and tag (and that the weights are "
    "public), or try again later."
)
