"""Portable result files: every path a result records is relative to the result file's folder.

Two runs in different folders then write the same bytes (timestamps and wall times aside), and a result moved with
its folder still reruns: `imibench score --from-result` resolves the recorded paths against the result's folder.
Paths appear in the spec (`model` as local:PATH or weights=PATH, `images` as folder:PATH, `proxy`, `out`,
`work_dir`), in the image source id of folder sources and inside provenance strings (e.g. a release folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from benchmark.results.schema import ResultFile

SPEC_PATH_FIELDS: tuple[str, ...] = ("proxy", "out", "work_dir")
# An absolute POSIX path inside free text: starts with "/" not preceded by a word character, ':' or '/' (so URLs and
# hub ids are left alone) and runs until whitespace, a bracket, a quote, a comma or a semicolon.
_ABSOLUTE_IN_TEXT = re.compile(r"(?<![\w.:/\-])/[^\s()\[\]{}'\",;]+")


def relative_path(path: str | Path, base: str | Path) -> str:
    """`path` relative to the folder `base` (POSIX separators); relative inputs are taken relative to the cwd."""
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()
    except ValueError:  # another drive (Windows): no relative form exists
        return Path(os.path.abspath(path)).as_posix()


def resolved_path(path: str | Path, base: str | Path) -> str:
    """A recorded path as a usable one: relative paths are joined to the folder `base`."""
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else Path(base) / expanded)


def portable_spec(spec: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """A spec mapping with its file paths relative to `base` (the result file's folder)."""
    return _map_spec_paths(spec, lambda p: relative_path(p, base))


def resolved_spec(spec: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """The inverse of `portable_spec`: recorded relative paths joined to `base`."""
    return _map_spec_paths(spec, lambda p: resolved_path(p, base))


def portable_text(value: Any, base: str | Path) -> Any:
    """Strings (in nested dicts and lists) with each absolute path made relative to `base`."""
    if isinstance(value, str):
        return _ABSOLUTE_IN_TEXT.sub(lambda m: relative_path(m.group(0), base), value)
    if isinstance(value, dict):
        return {k: portable_text(v, base) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable_text(v, base) for v in value]
    return value


def portable_result(result: ResultFile, base: str | Path) -> ResultFile:
    """The result with every recorded path relative to `base`, the folder the result file is written to."""
    source = result.protocol.image_source
    if source.kind == "folder":
        source = source.model_copy(update={"id": relative_path(source.id.removeprefix("folder:"), base)})
    proxy = result.proxy
    human = getattr(proxy, "human_data", None)
    if human is not None:
        proxy = proxy.model_copy(update={"human_data": human.model_copy(update={"source": portable_text(human.source,
                                                                                                         base)})})
    provenance = result.provenance.model_copy(
        update={"dataset_revisions": portable_text(result.provenance.dataset_revisions, base)}
    )
    return result.model_copy(update={
        "submission": result.submission.model_copy(update={"spec": portable_spec(result.submission.spec, base)}),
        "protocol": result.protocol.model_copy(update={"image_source": source}),
        "proxy": proxy,
        "provenance": provenance,
    })


def _map_spec_paths(spec: dict[str, Any], convert: Any) -> dict[str, Any]:
    spec = dict(spec)
    for key in SPEC_PATH_FIELDS:
        if spec.get(key):
            spec[key] = convert(spec[key])
    if isinstance(spec.get("model"), str):
        spec["model"] = _map_model_path(spec["model"], convert)
    if isinstance(spec.get("images"), str) and spec["images"].startswith("folder:"):
        path, sep, query = spec["images"].removeprefix("folder:").partition("?")
        spec["images"] = f"folder:{convert(path)}{sep}{query}"
    return spec


def _map_model_path(text: str, convert: Any) -> str:
    from benchmark.models.spec import parse_model_spec

    model = parse_model_spec(text)
    if model.weights is None:
        return text
    update: dict[str, Any] = {"weights": convert(model.weights)}
    if model.source == "local" and model.name == Path(model.weights).stem:
        update["name"] = Path(update["weights"]).stem  # keep the name implicit (it follows the file name)
    return model.model_copy(update=update).to_string()
