"""Held-out splits of units for validating proxies: leave one model out, and k-fold grouped by unit.

A split is a pair of integer index arrays (train, test) into the unit list. Every scheme groups by at least
the base unit (base model/layer/channel, mode-independent), so a unit never sits on both sides of a fold, and
the hard-query variants of a model (`<model>_hard85`, `<model>_hard95`: the same units with the same references)
always sit in the fold of their base model's units.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.proxies.base import ProxyUnit

Split = tuple[np.ndarray, np.ndarray]
SCHEMES: dict[str, str] = {
    "lomo": "leave one model out",
    "kfold": "k-fold grouped by unit",
}


HARD_VARIANT_SUFFIX = re.compile(r"_hard(85|95)$")


def base_model(model: str, base_models: Mapping[str, str] | None = None) -> str:
    """The model whose units `model`'s are: the `base_model` column's value when given, else the name without
    a `_hard85` / `_hard95` suffix (the release's hard-query variants reuse their base model's units)."""
    if base_models is not None and model in base_models:
        return str(base_models[model])
    return HARD_VARIANT_SUFFIX.sub("", str(model))


def unit_group(unit: ProxyUnit, base_models: Mapping[str, str] | None = None) -> str:
    """The fold-grouping key of a unit: base model/layer/channel (mode- and hard-variant-independent)."""
    return f"{base_model(unit.model, base_models)}/{unit.layer}/{unit.channel}"


def check_scheme(scheme: str) -> str:
    """Return `scheme` if it is a known held-out scheme, else raise ConfigError listing the valid ones."""
    if scheme not in SCHEMES:
        valid = ", ".join(f"{name} ({what})" for name, what in SCHEMES.items())
        raise ConfigError(
            f"Unknown validation scheme {scheme!r}; valid: {valid}. Pass --scheme lomo or --scheme kfold."
        )
    return scheme


def leave_one_model_out(units: Sequence[ProxyUnit], base_models: Mapping[str, str] | None = None) -> list[Split]:
    """One fold per (base) model: its units and its hard variants' are the test set, all others the training set."""
    models = np.array([base_model(u.model, base_models) for u in units], dtype=object)
    distinct = sorted(set(models))
    if len(distinct) < 2:
        raise ConfigError(
            f"Leave-one-model-out needs units of at least 2 models; got {len(distinct)} ({distinct}). "
            "Use --scheme kfold for data of a single model."
        )
    splitter = LeaveOneGroupOut()
    return [(train, test) for train, test in splitter.split(np.zeros(len(units)), groups=models.astype(str))]


def grouped_kfold(
    units: Sequence[ProxyUnit], k: int = 5, seed: int = 0, base_models: Mapping[str, str] | None = None
) -> list[Split]:
    """Shuffled k-fold over base units: all rows (modes, hard variants) of a unit land in the same fold."""
    if not isinstance(k, int | np.integer) or k < 2:
        raise ConfigError(f"k must be an integer of at least 2 for k-fold validation, got {k!r}; the default is 5.")
    groups = np.array([unit_group(u, base_models) for u in units], dtype=object).astype(str)
    n_groups = len(set(groups))
    if n_groups < k:
        raise ConfigError(
            f"Grouped {k}-fold needs at least {k} distinct units, got {n_groups}. Pass a smaller --k "
            f"(at most {n_groups}) or use more units."
        )
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(train, test) for train, test in splitter.split(np.zeros(len(units)), groups=groups)]


def make_splits(
    units: Sequence[ProxyUnit], scheme: str, *, k: int = 5, seed: int = 0,
    base_models: Mapping[str, str] | None = None,
) -> list[Split]:
    """The folds of `scheme` ("lomo" or "kfold") over `units`; hard variants stay with their base units."""
    check_scheme(scheme)
    if scheme == "lomo":
        return leave_one_model_out(units, base_models)
    return grouped_kfold(units, k=k, seed=seed, base_models=base_models)


def check_no_leakage(
    units: Sequence[ProxyUnit], train: np.ndarray, test: np.ndarray, base_models: Mapping[str, str] | None = None
) -> None:
    """Raise DataValidationError if a fold's train and test sets share an index or a (base) unit."""
    overlap = np.intersect1d(train, test)
    if len(overlap):
        raise DataValidationError(
            f"Fold leaks: indices {overlap[:10].tolist()} are in both train and test. Splits must be disjoint."
        )
    shared = {unit_group(units[i], base_models) for i in train} & {unit_group(units[i], base_models) for i in test}
    if shared:
        raise DataValidationError(
            f"Fold leaks: units {sorted(shared)[:10]} ({len(shared)} in all) are in both train and test (a unit "
            "and its hard variants count as one). Group the splits by benchmark.validation.splits.unit_group."
        )
