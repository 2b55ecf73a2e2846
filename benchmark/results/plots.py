"""Figures from result files: per-layer score profiles of several models, and a unit's tasks as an image grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.api.errors import SourceUnavailableError
from benchmark.results.schema import ResultFile, UnitScore
from benchmark.results.stimuli import materialised_name


def plot_layer_profiles(results: dict[str, ResultFile], out: str | Path, *, title: str = "") -> Path:
    """Mean unit score per layer (95% CI over units) against relative depth, one line per labelled result."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for label, result in results.items():
        layers = result.scores.layers
        depth = [s.relative_depth if s.relative_depth is not None else i / max(len(layers) - 1, 1)
                 for i, s in enumerate(layers)]
        mean = np.array([s.mean for s in layers])
        err = np.array([[s.mean - s.ci_low for s in layers], [s.ci_high - s.mean for s in layers]])
        model = result.scores.model
        ax.errorbar(depth, mean, yerr=err, marker="o", capsize=3,
                    label=f"{label}: {model.mean:.3f} [{model.ci_low:.3f}, {model.ci_high:.3f}]")
        for x, y, s in zip(depth, mean, layers):
            ax.annotate(s.layer, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, alpha=0.6)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    first = next(iter(results.values()))
    ax.set_xlabel("relative depth of the layer")
    ax.set_ylabel(f"{first.proxy.name} (mean over units, 95% CI)")
    ax.set_title(title or "Per-layer interpretability")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, out)


def plot_unit_tasks(
    result: ResultFile,
    result_path: str | Path,
    units: Sequence[tuple[str, UnitScore]],
    out: str | Path,
    *,
    n_tasks: int = 2,
) -> Path:
    """For each (caption, unit): its first `n_tasks` tasks as rows (max references, the two queries, min references)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = _stimuli_folder(result, Path(result_path))
    rows = [(caption, unit, t) for caption, unit in units for t in range(min(n_tasks, len(unit.tasks)))]
    k = max(len(unit.tasks[0].max_references) for _, unit in units)
    columns = 2 * k + 2
    fig, axes = plt.subplots(len(rows), columns, figsize=(0.85 * columns, 1.15 * len(rows) + 0.3), dpi=110,
                             squeeze=False)
    for row, (caption, unit, t) in enumerate(rows):
        task = unit.tasks[t]
        images = [*task.max_references, task.max_query, task.min_query, *reversed(task.min_references)]
        names = [*(["max ref"] * len(task.max_references)), "max query", "min query",
                 *(["min ref"] * len(task.min_references))]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(images):
                ax.axis("off")
                continue
            ax.imshow(_load(folder, images[col]))
            if row == 0:
                ax.set_title(names[col], fontsize=6)
            if col in (len(task.max_references), len(task.max_references) + 1):
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:orange" if col == len(task.max_references) else "tab:blue")
                    spine.set_linewidth(2.5)
        p = f", p(correct) {unit.task_scores[t]:.2f}" if t < len(unit.task_scores) else ""
        axes[row][0].set_ylabel(f"{caption}\n{unit.layer}/{unit.channel} {unit.score:.3f}\ntask {t + 1}{p}",
                                fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(f"{result.submission.model}: tasks of the most and least interpretable units "
                 f"({result.proxy.name})", fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def _stimuli_folder(result: ResultFile, result_path: Path) -> tuple[Path, bool]:
    source = result.protocol.image_source
    if source.stimuli_dir:
        folder = Path(source.stimuli_dir)
        return (folder if folder.is_absolute() else result_path.parent / folder), True
    folder = Path(source.id.removeprefix("folder:"))
    return (folder if folder.is_absolute() else result_path.parent / folder), False


def _load(folder: tuple[Path, bool], image_id: str) -> np.ndarray:
    root, materialised = folder
    path = root / (materialised_name(image_id) if materialised else image_id)
    if not path.is_file():
        raise SourceUnavailableError(
            f"Stimulus {image_id!r} of the result is not at {path}; the result's images must lie where it records "
            "them (its stimuli_dir or image folder, relative to the result file)."
        )
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _save(fig: object, out: str | Path) -> Path:
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    fig.savefig(tmp)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    tmp.replace(out)
    return out
