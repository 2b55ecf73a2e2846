"""Layer names of the release (`layer3_0_conv2`, CLIP `visual_layer3_0_conv2`) and a model's dotted module names.

The authors' layer lister joins module names with `_`, so `layer3_0_conv2` may be the module `layer3.0.conv2`
(or `layer3_0.conv2`, ...). The mapping is explicit: each release name maps onto exactly one module whose dotted
name, joined with `_`, equals it; a name that matches none or several modules is an error naming the candidates.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from benchmark.api.errors import DataValidationError

CLIP_PREFIX = "visual_"  # the authors prefix CLIP image-tower layers; the tower's own modules lack it


def joined(name: str) -> str:
    """A dotted module name as the authors' lister writes it (`layer3.0.conv2` -> `layer3_0_conv2`)."""
    return name.replace(".", "_")


def layer_module_map(layers: Iterable[str], module_names: Iterable[str]) -> dict[str, str]:
    """{release layer name: module name} for every layer; unknown or ambiguous names raise DataValidationError.

    A layer matches a module with the same name, else the module whose `_`-joined name equals it; a CLIP layer
    (`visual_...`) also matches the image tower's module without the prefix.
    """
    modules = list(dict.fromkeys(module_names))
    by_joined: dict[str, list[str]] = {}
    for module in modules:
        by_joined.setdefault(joined(module), []).append(module)
    mapping, problems = {}, []
    for layer in dict.fromkeys(layers):
        if layer in modules:
            mapping[layer] = layer
            continue
        candidates = by_joined.get(joined(layer), [])
        if not candidates and layer.startswith(CLIP_PREFIX):
            candidates = by_joined.get(joined(layer[len(CLIP_PREFIX):]), [])
        if len(candidates) == 1:
            mapping[layer] = candidates[0]
        elif candidates:
            problems.append(f"{layer!r} matches several modules {sorted(candidates)}")
        else:
            close = difflib.get_close_matches(joined(layer), list(by_joined), n=3)
            hint = f" (closest: {[by_joined[c][0] for c in close]})" if close else ""
            problems.append(f"{layer!r} matches no module{hint}")
    if problems:
        raise DataValidationError(
            "Cannot map release layer names onto the model's modules: " + "; ".join(problems) + ". Layer names "
            "are module names joined with '_' (CLIP: prefixed 'visual_'); pass the model the release used."
        )
    return mapping


def same_layer_key(layer: str, keys: Iterable[str]) -> str | None:
    """The one key among `keys` naming `layer` up to '.'/'_' spelling (exact match first), or None."""
    keys = list(keys)
    if layer in keys:
        return layer
    matches = [k for k in keys if joined(k) == joined(layer)]
    return matches[0] if len(matches) == 1 else None
