"""Which models and modes to analyse: --models/--modes filters, hard-variant links, the paper's model order."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import pandas as pd

from benchmark.api.errors import ConfigError
from benchmark.api.types import MODES

# The release's model ids in the order reference/imi-release.md lists them (the study's), with display names.
PAPER_MODELS: dict[str, str] = {
    "googlenet": "GoogLeNet",
    "densenet_201": "DenseNet-201",
    "wide_resnet50": "Wide ResNet-50",
    "resnet50": "ResNet-50",
    "resnet50-l2": "ResNet-50 (L2 adv. trained)",
    "clip-resnet50": "CLIP ResNet-50",
    "clip-vit_b32": "CLIP ViT-B/32",
    "in1k-vit_b32": "ViT-B/32 (ImageNet-1k)",
    "convnext_b": "ConvNeXt-B",
    "resnet50_hard85": "ResNet-50, hard queries (15/85 %)",
    "resnet50_hard95": "ResNet-50, hard queries (5/95 %)",
    "clip-resnet50_hard85": "CLIP ResNet-50, hard queries (15/85 %)",
    "clip-resnet50_hard95": "CLIP ResNet-50, hard queries (5/95 %)",
}
HARD_SUFFIXES: tuple[str, ...] = ("_hard85", "_hard95")


def base_model_of(model: str) -> str:
    """The model whose units a hard-query variant shares (`resnet50_hard95` -> `resnet50`); else the model itself."""
    for suffix in HARD_SUFFIXES:
        if model.endswith(suffix):
            return model[: -len(suffix)]
    return model


def paper_order(models: Iterable[str]) -> list[str]:
    """`models` in the paper's order; models it does not list (e.g. simulated ones) follow, sorted."""
    present = set(models)
    known = [m for m in PAPER_MODELS if m in present]
    return known + sorted(present - set(PAPER_MODELS))


def model_display_name(model: str) -> str:
    """The paper's name of a release model id (the id itself for other models)."""
    return PAPER_MODELS.get(model, model)


def parse_list(text: str | None, what: str) -> tuple[str, ...] | None:
    """A comma-separated CLI list as a tuple (None when not given); empty items are an error."""
    if text is None:
        return None
    items = tuple(item.strip() for item in text.split(","))
    if not items or any(not item for item in items):
        raise ConfigError(f"--{what} {text!r} has an empty item; give a comma-separated list, e.g. --{what} a,b.")
    return tuple(dict.fromkeys(items))


def check_modes(modes: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """`modes` if every one is a stimulus mode (natural, optimized), else ConfigError."""
    if modes is None:
        return None
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"--modes {','.join(modes)}: unknown mode(s) {unknown}; valid: {list(MODES)}.")
    return modes


def check_models(models: tuple[str, ...] | None, available: Iterable[str], source: str) -> tuple[str, ...] | None:
    """`models` if every one is in `available`, else ConfigError with the closest names and the valid list."""
    if models is None:
        return None
    valid = sorted(set(available))
    unknown = [m for m in models if m not in valid]
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ConfigError(f"--models: no responses for {unknown} in {source}.{hint} Models present: {valid}.")
    return models


def select_trials(
    trials: pd.DataFrame, *, models: tuple[str, ...] | None = None, modes: tuple[str, ...] | None = None,
    source: str = "the data",
) -> pd.DataFrame:
    """The trials of the named models and modes (all when None); an unknown name is a ConfigError."""
    check_modes(modes)
    check_models(models, trials["model"].dropna().unique(), source)
    keep = pd.Series(True, index=trials.index)
    if models is not None:
        keep &= trials["model"].isin(models).fillna(False).astype(bool)
    if modes is not None:
        present = set(trials["mode"].dropna().unique())
        absent = [m for m in modes if m not in present]
        if absent:
            raise ConfigError(f"--modes: no responses in mode(s) {absent} in {source}; modes present: "
                              f"{sorted(present)}.")
        keep &= trials["mode"].isin(modes).fillna(False).astype(bool)
    return trials.loc[keep].reset_index(drop=True)
