"""Small release-shaped and canonical trial tables built in code, for tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def release_table(
    *,
    n_participants: int = 6,
    units: tuple[tuple[str, str, int], ...] = (("m1", "layer1", 0), ("m1", "layer1", 1), ("m2", "layer2", 3)),
    modes: tuple[str, ...] = ("natural",),
    with_demo: bool = True,
    with_catch: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """A release-shaped response table: every participant answers every unit-mode once, plus demo and catch rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_participants):
        pid, task = f"P{p + 1:04d}", f"task_{p + 1:03d}"
        trial = 0
        if with_demo:
            rows.append(_row(pid, task, trial, "demo", "", "natural", None, None, True, is_demo=True))
            trial += 1
        for model, layer, channel in units:
            for mode in modes:
                correct = bool(rng.random() < 0.8)
                rows.append(_row(pid, task, trial, model, layer, mode, channel, int(rng.integers(0, 5)), correct))
                trial += 1
        if with_catch:
            rows.append(_row(pid, task, trial, "catch/manual", "", "catch_trial", None, -1, True, catch=True))
    return pd.DataFrame(rows)


def _row(pid, task, trial, model, layer, mode, channel, batch, correct, *, is_demo=False, catch=False) -> dict:
    return {
        "model": model,
        "layer": layer,
        "channel": channel,
        "mode": mode,
        "batch": batch,
        "task_id": task,
        "participant_id": pid,
        "trial_index": trial,
        "correct": correct,
        "confidence": 2,
        "rt": 2000.0 + trial,
        "catch_trial": catch,
        "is_demo": is_demo,
        "passed_checks": True,
    }


def planted_trials(
    accuracies: np.ndarray, *, n_participants: int = 30, seed: int = 0, mode: str = "natural"
) -> pd.DataFrame:
    """A canonical main-trial table: each participant answers each unit once, correct with the unit's probability."""
    rng = np.random.default_rng(seed)
    n_units = len(accuracies)
    correct = rng.random((n_participants, n_units)) < accuracies[None, :]
    p_idx, u_idx = np.meshgrid(np.arange(n_participants), np.arange(n_units), indexing="ij")
    n = correct.size
    return pd.DataFrame(
        {
            "model": pd.array([f"model{u % 3}" for u in u_idx.ravel()], dtype="string"),
            "layer": pd.array(["layer1"] * n, dtype="string"),
            "channel": pd.array(u_idx.ravel(), dtype="Int64"),
            "mode": pd.array([mode] * n, dtype="string"),
            "batch": pd.array(np.zeros(n, dtype=int), dtype="Int64"),
            "task_id": pd.array([f"task_{p}" for p in p_idx.ravel()], dtype="string"),
            "participant_id": pd.array([f"P{p:04d}" for p in p_idx.ravel()], dtype="string"),
            "trial_index": pd.array(u_idx.ravel(), dtype="Int64"),
            "correct": pd.array(correct.ravel(), dtype="boolean"),
            "confidence": pd.array(np.full(n, 2), dtype="Int64"),
            "rt_ms": np.full(n, 2000.0),
            "is_demo": pd.array(np.zeros(n, dtype=bool), dtype="boolean"),
            "catch_trial": pd.array(np.zeros(n, dtype=bool), dtype="boolean"),
            "passed_checks": pd.array(np.ones(n, dtype=bool), dtype="boolean"),
        }
    )
