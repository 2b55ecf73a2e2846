"""Held-out splits of units for validating proxies: leave one model out, and k-fold grouped by unit.

A split is a pair of integer index arrays (train, test) into the unit list. Every scheme groups by at least
the unit id (model/layer/channel, mode-independent), so a unit never sits on both sides of a fold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.proxies.base import ProxyUnit

Split = tuple[np.ndarray, np.ndarray]
SCHEMES: dict[str, str] = {
    "lomo": "leave one model out",
    "kfold": "k-fold grouped by unit",
}


def check_scheme(scheme: str) -> str:
    """Return `scheme` if it is a known held-out scheme, else raise ConfigError listing the valid ones."""
    if scheme not in SCHEMES:
        valid = ", ".join(f"{name} ({what})" for name, what in SCHEMES.items())
        raise ConfigError(
            f"Unknown validation scheme {scheme!r}; valid: {valid}. Pass --scheme lomo or --scheme kfold."
        )
    return scheme


def leave_one_model_out(units: Sequence[ProxyUnit]) -> list[Split]:
    """One fold per model: that model's units are the test set, all others the training set."""
    models = np.array([u.model for u in units], dtype=object)
    distinct = sorted(set(models))
    if len(distinct) < 2:
        raise ConfigError(
            f"Leave-one-model-out needs units of at least 2 models; got {len(distinct)} ({distinct}). "
            "Use --scheme kfold for data of a single model."
        )
    splitter = LeaveOneGroupOut()
    return [(train, test) for train, test in splitter.split(np.zeros(len(units)), groups=models.astype(str))]


def grouped_kfold(units: Sequence[ProxyUnit], k: int = 5, seed: int = 0) -> list[Split]:
    """Shuffled k-fold over unit ids: all rows (modes) of a unit land in the same fold."""
    if not isinstance(k, int | np.integer) or k < 2:
        raise ConfigError(f"k must be an integer of at least 2 for k-fold validation, got {k!r}; the default is 5.")
    groups = np.array([u.unit_id for u in units], dtype=object).astype(str)
    n_groups = len(set(groups))
    if n_groups < k:
        raise ConfigError(
            f"Grouped {k}-fold needs at least {k} distinct units, got {n_groups}. Pass a smaller --k "
            f"(at most {n_groups}) or use more units."
        )
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(train, test) for train, test in splitter.split(np.zeros(len(units)), groups=groups)]


def make_splits(units: Sequence[ProxyUnit], scheme: str, *, k: int = 5, seed: int = 0) -> list[Split]:
    """The folds of `scheme` ("lomo" or "kfold") over `units`."""
    check_scheme(scheme)
    if scheme == "lomo":
        return leave_one_model_out(units)
    return grouped_kfold(units, k=k, seed=seed)


def check_no_leakage(units: Sequence[ProxyUnit], train: np.ndarray, test: np.ndarray) -> None:
    """Raise DataValidationError if a fold's train and test sets share an index or a unit id."""
    overlap = np.intersect1d(train, test)
    if len(overlap):
        raise DataValidationError(
            f"Fold leaks: indices {overlap[:10].tolist()} are in both train and test. Splits must be disjoint."
        )
    shared = {units[i].unit_id for i in train} & {units[i].unit_id for i in test}
    if shared:
        raise DataValidationError(
            f"Fold leaks: unit ids {sorted(shared)[:10]} ({len(shared)} in all) are in both train and test. "
            "Group the splits by ProxyUnit.unit_id (see benchmark.validation.splits.grouped_kfold)."
        )
