"""Turn a unit's tasks (image indices) into the image files a proxy embeds."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmark.data.stimuli import TaskStimuli
from benchmark.proxies.base import ProxyUnit
from benchmark.results.stimuli import materialised_name
from benchmark.stimuli.exemplars import UnitTasks
from benchmark.stimuli.sources import ImageFolderSource, ImageSource

def materialise(source: ImageSource, indices: Iterable[int], folder: Path, *, progress: bool = False) -> dict[int, Path]:
    """A file per image index: the original file for folder sources, else a PNG written once under `folder`."""
    needed = sorted({int(i) for i in indices})
    ids = source.ids()
    if isinstance(source, ImageFolderSource):
        return {i: source.root / ids[i] for i in needed}
    folder.mkdir(parents=True, exist_ok=True)
    paths = {i: folder / materialised_name(ids[i]) for i in needed}
    missing = [i for i in needed if not paths[i].is_file()]
    for i, image in tqdm(_images(source, missing), total=len(missing), desc="stimuli", unit="img", disable=not progress):
        tmp = paths[i].with_name(f".{paths[i].name}.tmp")
        image.save(tmp, format="PNG")
        tmp.replace(paths[i])
    return paths


def _images(source: ImageSource, indices: list[int]) -> Iterable[tuple[int, object]]:
    if not indices:
        return
    if source.sequential_only:  # streamed datasets are read once, in order
        wanted = set(indices)
        for i, image in source.iter_images(start=indices[0]):
            if i in wanted:
                yield i, image
                wanted.discard(i)
                if not wanted:
                    return
        return
    for i in indices:
        yield i, source.load(i)


def proxy_unit(model: str, layer: str, channel: int, tasks: UnitTasks, paths: dict[int, Path]) -> ProxyUnit:
    """A ProxyUnit with one TaskStimuli per task, in natural mode."""
    stimuli = tuple(
        TaskStimuli(
            model=model,
            layer=layer,
            channel=channel,
            mode="natural",
            batch=b,
            max_references=tuple(paths[int(i)] for i in tasks.max_references[b]),
            min_references=tuple(paths[int(i)] for i in tasks.min_references[b]),
            max_query=paths[int(tasks.max_queries[b])],
            min_query=paths[int(tasks.min_queries[b])],
        )
        for b in range(tasks.n_tasks)
    )
    return ProxyUnit(model=model, layer=layer, channel=channel, mode="natural", tasks=stimuli)


def all_indices(tasks: Iterable[UnitTasks]) -> np.ndarray:
    """Every image index any of the tasks uses."""
    parts = [t.image_ids() for t in tasks]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
