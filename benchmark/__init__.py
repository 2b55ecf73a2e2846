"""imi-bench: automated interpretability benchmark for vision models, validated against human 2-AFC data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("imi-bench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
