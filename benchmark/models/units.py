"""Units of a model: enumerate candidate layers, select layers, sample units, reduce activations to one value per unit.

A *unit* is one channel of a layer's output (spatial mean over H, W for (B, C, H, W) maps; mean over tokens for
(B, N, C) token sequences; the value itself for (B, C) vectors). Layers are found by ONE dummy forward (zeros of the
model's input size, batch 2) with forward hooks on every candidate module, which gives each layer its depth (order
of first call), its output shape and where its channels are. Candidate kinds:

- ``conv``: convolutions (out_channels units);
- ``linear``: linear layers that are not the first layer of an MLP block (out_features units);
- ``norm``: BatchNorm / GroupNorm / InstanceNorm / LayerNorm / RMSNorm-like modules (their channel count);
- ``mlp``: the first linear (or 1x1 conv) of an MLP block — a module named ``mlp`` or whose class name ends in
  ``Mlp`` (timm ``blocks.N.mlp.fc1``, ConvNeXt ``stages.S.blocks.B.mlp.fc1``, open_clip ``resblocks.N.mlp.c_fc``,
  torchvision ViT ``encoder_layer_N.mlp.0``): the pre-nonlinearity hidden units of the MLP.

Modules that never run in a forward pass (e.g. ``out_proj`` of ``nn.MultiheadAttention``, whose weights are used
functionally) are not listed. A module that runs several times per forward is listed once with ``n_calls`` > 1
(its depth is that of its first call).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from benchmark.api.errors import ConfigError
from benchmark.models.adapters import LoadedModel

LAYER_KINDS: tuple[str, ...] = ("conv", "linear", "norm", "mlp")
DUMMY_BATCH = 2
# default_unit_selection: the first kind present is used (the pre-nonlinearity units of each architecture family).
DEFAULT_KIND_PREFERENCE: tuple[str, ...] = ("mlp", "norm", "conv")
DEFAULT_TOTAL_UNITS = 84  # units per model in the IMI study (Zimmermann, Klein & Brendel, NeurIPS 2023)
# Norm modules: torch's own and their subclasses, or classes named like one (timm RmsNorm, GroupNorm1, LayerNorm2d,
# BatchNormAct2d, ...) but not containers such as NormMlpClassifierHead.
_NORM_CLASS_NAME = re.compile(r"Norm(Act)?\d*d?$")
_TORCH_NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, getattr(nn, "RMSNorm", nn.LayerNorm))
_CHANNELS_FIRST_NORMS = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm)


@dataclass(frozen=True)
class LayerInfo:
    """A candidate layer: dotted module name, kind, number of units, depth and the output seen in the dummy forward.

    `output_shape` includes the batch dimension (size DUMMY_BATCH at `batch_dim`, normally 0); the units lie along
    `channel_dim` (1 for (B, C, H, W), the last dimension for (B, N, C) tokens and (B, H, W, C) channels-last maps).
    """

    name: str
    kind: str
    n_units: int
    depth: int
    relative_depth: float
    output_shape: tuple[int, ...]
    channel_dim: int
    batch_dim: int = 0
    n_calls: int = 1
    module_type: str = ""

    @property
    def layout(self) -> str:
        """A short description of the output layout: BC, BCHW, BNC, BHWC or a generic B/C pattern."""
        named = {(2, 1): "BC", (4, 1): "BCHW", (3, 2): "BNC", (4, 3): "BHWC", (3, 1): "BCN"}
        if self.batch_dim == 0 and (len(self.output_shape), self.channel_dim) in named:
            return named[(len(self.output_shape), self.channel_dim)]
        letters = ["x"] * len(self.output_shape)
        letters[self.batch_dim], letters[self.channel_dim] = "B", "C"
        return "".join(letters)


@dataclass(frozen=True)
class UnitRef:
    """One unit: a channel of a layer (the layer's dotted module name)."""

    layer: str
    channel: int

    def __str__(self) -> str:
        return f"{self.layer}/{self.channel}"


# ------------------------------------------------------------------------------------------------ enumeration


def list_layers(loaded: LoadedModel, *, kinds: Sequence[str] = LAYER_KINDS) -> list[LayerInfo]:
    """Every candidate layer of the loaded model of the given kinds, in forward order (one dummy forward)."""
    return enumerate_layers(loaded.module, loaded.data_config.input_size, kinds=kinds)


def enumerate_layers(
    module: nn.Module, input_size: Sequence[int], *, kinds: Sequence[str] = LAYER_KINDS
) -> list[LayerInfo]:
    """Candidate layers of any module fed (C, H, W) inputs; depths count all kinds, then `kinds` filters."""
    _check_kinds(kinds)
    candidates = _candidates(module)
    seen = _dummy_forward(module, tuple(input_size), candidates)
    infos = _layer_infos(candidates, seen)
    return [info for info in infos if info.kind in kinds]


def _candidates(module: nn.Module) -> dict[str, tuple[nn.Module, str, int]]:
    """name -> (module, kind, n_units) for every module of a candidate kind."""
    mlp_first = _mlp_first_layers(module)
    found: dict[str, tuple[nn.Module, str, int]] = {}
    for name, sub in module.named_modules():
        if not name:
            continue
        kind_units = _kind_and_units(sub)
        if kind_units is None:
            continue
        kind, n_units = kind_units
        if name in mlp_first:
            kind = "mlp"
        found[name] = (sub, kind, n_units)
    return found


def _kind_and_units(sub: nn.Module) -> tuple[str, int] | None:
    if isinstance(sub, nn.modules.conv._ConvNd):
        return "conv", int(sub.out_channels)
    if isinstance(sub, nn.Linear):
        return "linear", int(sub.out_features)
    if not isinstance(sub, _TORCH_NORMS) and not _NORM_CLASS_NAME.search(type(sub).__name__):
        return None
    for attribute in ("num_features", "num_channels"):
        value = getattr(sub, attribute, None)
        if isinstance(value, int):
            return "norm", value
    shape = getattr(sub, "normalized_shape", None)
    if isinstance(shape, (tuple, list)) and len(shape) >= 1:
        return "norm", int(shape[-1])
    if isinstance(shape, int):
        return "norm", shape
    return None


def _mlp_first_layers(module: nn.Module) -> set[str]:
    """Names of the first linear / conv child of every MLP block (named `mlp` or of a class ending in `Mlp`)."""
    first: set[str] = set()
    for name, sub in module.named_modules():
        if not name or not _is_mlp_block(name, sub):
            continue
        for child_name, child in sub.named_children():
            if isinstance(child, (nn.Linear, nn.modules.conv._ConvNd)):
                first.add(f"{name}.{child_name}")
                break
    return first


def _is_mlp_block(name: str, sub: nn.Module) -> bool:
    return name.rsplit(".", 1)[-1].lower() == "mlp" or type(sub).__name__.lower().endswith("mlp")


def _dummy_forward(
    module: nn.Module, input_size: tuple[int, ...], candidates: dict[str, tuple[nn.Module, str, int]]
) -> dict[str, tuple[int, tuple[int, ...], int]]:
    """Run zeros through the module; name -> (call order, output shape, number of calls) of the modules that ran."""
    seen: dict[str, tuple[int, tuple[int, ...], int]] = {}

    def hook_for(name: str):  # noqa: ANN202 - a torch forward hook
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if name in seen:
                order, shape, calls = seen[name]
                seen[name] = (order, shape, calls + 1)
            elif isinstance(output, torch.Tensor):
                seen[name] = (len(seen), tuple(output.shape), 1)

        return hook

    parameter = next(iter(module.parameters()), None)
    dtype = parameter.dtype if parameter is not None and parameter.is_floating_point() else torch.float32
    device = parameter.device if parameter is not None else torch.device("cpu")
    handles = [sub.register_forward_hook(hook_for(name)) for name, (sub, _, _) in candidates.items()]
    try:
        with torch.no_grad():
            module(torch.zeros((DUMMY_BATCH, *input_size), dtype=dtype, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _layer_infos(
    candidates: dict[str, tuple[nn.Module, str, int]], seen: dict[str, tuple[int, tuple[int, ...], int]]
) -> list[LayerInfo]:
    placed: list[tuple[str, str, int, tuple[int, ...], int, int, int, str]] = []
    skipped: list[str] = []
    for name, (_order, shape, calls) in sorted(seen.items(), key=lambda item: item[1][0]):
        sub, kind, n_units = candidates[name]
        dims = _batch_and_channel_dims(sub, shape, n_units)
        if dims is None:
            skipped.append(f"{name} {shape}")
            continue
        placed.append((name, kind, n_units, shape, dims[0], dims[1], calls, type(sub).__name__))
    if skipped:
        warnings.warn(
            f"Could not locate the batch / unit dimension of {len(skipped)} layer output(s); they are not listed: "
            f"{', '.join(skipped[:5])}",
            stacklevel=3,
        )
    last = max(len(placed) - 1, 1)
    return [
        LayerInfo(name, kind, n_units, depth, depth / last, shape, channel_dim, batch_dim, calls, module_type)
        for depth, (name, kind, n_units, shape, batch_dim, channel_dim, calls, module_type) in enumerate(placed)
    ]


def _batch_and_channel_dims(sub: nn.Module, shape: tuple[int, ...], n_units: int) -> tuple[int, int] | None:
    """(batch dim, unit dim) of a module's output, or None when they cannot be told apart."""
    batch_candidates = [d for d, size in enumerate(shape) if size == DUMMY_BATCH]
    if not batch_candidates or len(shape) < 2:
        return None
    batch_dim = 0 if shape[0] == DUMMY_BATCH else (batch_candidates[0] if len(batch_candidates) == 1 else None)
    if batch_dim is None:
        return None
    rest = [d for d in range(len(shape)) if d != batch_dim]
    preferred = rest[0] if _channels_first(sub) else rest[-1]
    if shape[preferred] == n_units:
        return batch_dim, preferred
    matches = [d for d in rest if shape[d] == n_units]
    return (batch_dim, matches[0]) if len(matches) == 1 else None


def _channels_first(sub: nn.Module) -> bool:
    if isinstance(sub, (nn.modules.conv._ConvNd, *_CHANNELS_FIRST_NORMS)):
        return True
    return type(sub).__name__.lower().endswith("2d")  # e.g. timm / torchvision LayerNorm2d


def _check_kinds(kinds: Iterable[str]) -> None:
    is_string = isinstance(kinds, str)
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in LAYER_KINDS]
    if is_string or unknown or not kinds:
        raise ConfigError(
            f"Unknown or empty layer kinds {kinds!r}; valid kinds: {', '.join(LAYER_KINDS)} (pass a list of them)."
        )


# -------------------------------------------------------------------------------------------------- selection


def select_layers(
    layers: Sequence[LayerInfo],
    *,
    patterns: Sequence[str] | None = None,
    depth_fractions: Sequence[float] | None = None,
    kinds: Sequence[str] | None = None,
) -> list[LayerInfo]:
    """Layers matching any fnmatch pattern or nearest to any relative depth (all when neither), sorted by depth."""
    pool = _filter_kinds(layers, kinds)
    if patterns is None and depth_fractions is None:
        return sorted(pool, key=lambda info: info.depth)
    chosen: dict[str, LayerInfo] = {}
    for pattern in patterns or ():
        matched = [info for info in pool if fnmatch.fnmatchcase(info.name, pattern)]
        if not matched:
            raise ConfigError(
                f"Layer pattern {pattern!r} matches none of the {len(pool)} candidate layers"
                f"{_kinds_note(kinds)}; e.g. {_some_names(pool)}. Patterns are fnmatch-style on dotted module "
                "names (e.g. 'layer4.*.conv2', 'blocks.*.mlp.fc1')."
            )
        chosen.update((info.name, info) for info in matched)
    for fraction in depth_fractions or ():
        nearest = _nearest_to_depth(pool, fraction)
        chosen[nearest.name] = nearest
    return sorted(chosen.values(), key=lambda info: info.depth)


def _filter_kinds(layers: Sequence[LayerInfo], kinds: Sequence[str] | None) -> list[LayerInfo]:
    if kinds is None:
        pool = list(layers)
    else:
        _check_kinds(kinds)
        pool = [info for info in layers if info.kind in kinds]
    if not pool:
        present = sorted({info.kind for info in layers})
        raise ConfigError(
            f"No candidate layers{_kinds_note(kinds)}; the layers given have kinds {', '.join(present) or '(none)'}. "
            "Choose kinds the model has."
        )
    return pool


def _nearest_to_depth(pool: Sequence[LayerInfo], fraction: float) -> LayerInfo:
    if not isinstance(fraction, (int, float)) or not 0.0 <= float(fraction) <= 1.0:
        raise ConfigError(f"Depth fraction {fraction!r} is not a number in [0, 1] (0 = first layer, 1 = last).")
    return min(pool, key=lambda info: (abs(info.relative_depth - float(fraction)), info.depth))


def _kinds_note(kinds: Sequence[str] | None) -> str:
    return f" of kinds {', '.join(kinds)}" if kinds else ""


def _some_names(pool: Sequence[LayerInfo], limit: int = 8) -> str:
    names = [info.name for info in sorted(pool, key=lambda info: info.depth)]
    if len(names) <= limit:
        return ", ".join(names)
    step = len(names) / limit
    return ", ".join(names[int(i * step)] for i in range(limit)) + f" ... ({len(names)} in all)"


# --------------------------------------------------------------------------------------------------- sampling


def sample_units(
    layers: Sequence[LayerInfo], *, per_layer: int | None = None, total: int | None = None, seed: int = 0
) -> list[UnitRef]:
    """Reproducible unit sample: up to `per_layer` per layer, or `total` spread evenly over layers, or all units.

    A layer's channels are the first k of a permutation drawn from a numpy Generator seeded by (seed, sha256 of the
    layer name), so they do not depend on which other layers are sampled or in which order. With `total`, units are
    split evenly over the layers (capped at each layer's size; a remainder goes to layers picked with the seed).
    The result has no duplicates and is sorted by layer depth, then channel.
    """
    _check_sampling_args(layers, per_layer, total, seed)
    if per_layer is not None:
        counts = {info.name: min(per_layer, info.n_units) for info in layers}
    elif total is not None:
        counts = _allocate(layers, total, seed)
    else:
        counts = {info.name: info.n_units for info in layers}
    units = [
        UnitRef(info.name, channel)
        for info in sorted(layers, key=lambda info: (info.depth, info.name))
        for channel in _sample_channels(info, counts[info.name], seed)
    ]
    return units


def _sample_channels(info: LayerInfo, count: int, seed: int) -> list[int]:
    if count <= 0:
        return []
    name_key = int.from_bytes(hashlib.sha256(info.name.encode("utf-8")).digest()[:8], "little")
    permutation = np.random.default_rng([seed, name_key]).permutation(info.n_units)
    return sorted(int(c) for c in permutation[:count])


def _allocate(layers: Sequence[LayerInfo], total: int, seed: int) -> dict[str, int]:
    capacity = sum(info.n_units for info in layers)
    if total > capacity:
        raise ConfigError(
            f"total={total} units requested but the {len(layers)} layers given have {capacity} units in all; "
            "ask for fewer units or select more layers."
        )
    order = sorted(layers, key=lambda info: (info.depth, info.name))
    counts = dict.fromkeys((info.name for info in order), 0)
    while (remaining := total - sum(counts.values())) > 0:
        open_layers = [info for info in order if counts[info.name] < info.n_units]
        share, extra = divmod(remaining, len(open_layers))
        if share:
            for info in open_layers:
                counts[info.name] += min(share, info.n_units - counts[info.name])
            continue
        rng = np.random.default_rng([seed, len(open_layers), extra])
        for index in rng.choice(len(open_layers), size=extra, replace=False):
            counts[open_layers[int(index)].name] += 1
    return counts


def _check_sampling_args(layers: Sequence[LayerInfo], per_layer: int | None, total: int | None, seed: int) -> None:
    if not layers:
        raise ConfigError("No layers to sample units from; select at least one layer (see select_layers).")
    names = [info.name for info in layers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"Layers are listed more than once: {', '.join(duplicates[:5])}; pass each layer once.")
    if per_layer is not None and total is not None:
        raise ConfigError(
            f"Give per_layer ({per_layer}) or total ({total}), not both: per_layer samples that many units from "
            "every layer, total spreads that many units over the layers."
        )
    for label, value in (("per_layer", per_layer), ("total", total)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{label}={value!r} must be a positive integer.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer.")


def default_unit_selection(
    loaded: LoadedModel,
    seed: int = 0,
    *,
    total: int = DEFAULT_TOTAL_UNITS,
    kinds: Sequence[str] | None = None,
    patterns: Sequence[str] | None = None,
    layers: Sequence[LayerInfo] | None = None,
) -> list[UnitRef]:
    """The benchmark's default units: `total` (84, as in IMI) units spread evenly over all layers of one kind.

    The kind is the first of DEFAULT_KIND_PREFERENCE the model has: ``mlp`` (the hidden units of transformer and
    ConvNeXt MLP blocks, before their nonlinearity), else ``norm`` (BatchNorm outputs of CNNs, which precede the
    nonlinearity as in IMI's pre-nonlinearity channels), else ``conv``. Like the large-scale MIS study, units come
    from every layer of that kind (not a hand-picked few); `kinds` and `patterns` override the layer choice. When
    those layers have fewer than `total` units, all are taken. `layers` reuses a `list_layers(loaded)` result.
    """
    layers = list(layers) if layers is not None else list_layers(loaded)
    chosen_kinds = list(kinds) if kinds is not None else _preferred_kind(layers)
    selected = select_layers(layers, patterns=patterns, kinds=chosen_kinds)
    return sample_units(selected, total=min(total, sum(info.n_units for info in selected)), seed=seed)


def every_unit(
    layers: Sequence[LayerInfo],
    *,
    patterns: Sequence[str] | None = None,
    depth_fractions: Sequence[float] | None = None,
) -> list[UnitRef]:
    """Every channel of the chosen layers (`--units all`); with no layer choice, of every layer of the preferred kind
    (the layers the default 84-unit sample is spread over)."""
    if patterns is None and depth_fractions is None:
        chosen = select_layers(layers, kinds=_preferred_kind(layers))
    else:
        chosen = select_layers(layers, patterns=patterns, depth_fractions=depth_fractions)
    return sample_units(chosen)


def _preferred_kind(layers: Sequence[LayerInfo]) -> list[str]:
    present = {info.kind for info in layers}
    for kind in DEFAULT_KIND_PREFERENCE:
        if kind in present:
            return [kind]
    raise ConfigError(
        f"The model has no layers of kinds {', '.join(DEFAULT_KIND_PREFERENCE)} (found: {', '.join(sorted(present))}); "
        "pass kinds= or patterns= to default_unit_selection."
    )


# -------------------------------------------------------------------------------------------------- reduction


def layer_output_to_units(output: torch.Tensor, layer: LayerInfo) -> torch.Tensor:
    """Reduce a layer's output to (B, n_units) float32: mean over every dimension but batch and units."""
    if output.dim() != len(layer.output_shape) or output.shape[layer.channel_dim] != layer.n_units:
        raise ConfigError(
            f"Output of layer {layer.name!r} has shape {tuple(output.shape)}, but its LayerInfo expects "
            f"{len(layer.output_shape)} dimensions with {layer.n_units} units along dim {layer.channel_dim} "
            f"(layout {layer.layout}, dummy-forward shape {layer.output_shape}). Enumerate the layers of this "
            "model with list_layers and use the same input size."
        )
    moved = torch.movedim(output, (layer.batch_dim, layer.channel_dim), (0, 1))
    if moved.dim() == 2:
        return moved.float()
    return moved.mean(dim=tuple(range(2, moved.dim())), dtype=torch.float32)
