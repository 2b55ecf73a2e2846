"""The activation pass: one streaming forward over an image source, keeping per unit only its top/bottom-k images.

Forward hooks sit on the selected layers only. Each hook reduces its layer's output to one value per unit
(spatial / token mean), keeps the sampled channels, and hands a (B, U) float32 tensor over; after the forward the
batch is folded into each layer's ExtremeSets on the device (so a batch is applied to all layers or to none, which
keeps checkpoints consistent). Nothing but the final sets (and checkpoints) is copied to the host; memory does not
grow with the number of images.

Early stop (an optimisation, on by default): the first batch runs the whole model and records the order in which
the selected layers fire; from the second batch on, the hook of the last of them raises a private exception that
ends the forward, so the layers after it (typically the rest of the network and the head) are never computed.
The values are identical either way (tested); `benchmarks/activation_throughput.py` measures the saving.

The image stream: `loader` is either an iterable of (images, ids) batches or a `loader_factory(start) ->
iterable` that yields the stream from image offset `start` (e.g. `lambda start: make_loader(source, transform,
batch_size=256, num_workers=8, pin_memory=True, start=start)`). Resuming from a checkpoint calls the factory with
the number of images already consumed; a plain iterable is instead read from its beginning and the consumed
images are skipped without a forward pass (correct, but it pays their loading time).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.activations.checkpoint import (
    CheckpointConfig,
    encode_fingerprint,
    load_checkpoint,
    model_structure_hash,
    save_checkpoint,
)
from benchmark.activations.extremes import ExtremeSets, check_ids
from benchmark.api.errors import ConfigError

log = logging.getLogger(__name__)

Batch = tuple[Tensor, Tensor]
LoaderFactory = Callable[[int], Iterable[Batch]]
Reducer = Callable[[Any, "LayerSelection"], Tensor]


@dataclass(frozen=True)
class LayerSelection:
    """Which units of one layer are sampled (`channels`, None = all) and how its output reduces to units.

    `info` is the layer's `benchmark.models.units.LayerInfo` when known; the default reducer then uses
    `layer_output_to_units(output, info)`, otherwise a layout guess (see `reduce_to_units`).
    """

    channels: tuple[int, ...] | None = None
    info: Any = None

    def __post_init__(self) -> None:
        if self.channels is None:
            return
        channels = tuple(int(c) for c in self.channels)
        if len(set(channels)) != len(channels) or any(c < 0 for c in channels):
            raise ConfigError(f"LayerSelection.channels must be distinct non-negative indices, got {channels}.")
        object.__setattr__(self, "channels", channels)


def layer_selections(units: Iterable[Any], layer_infos: Iterable[Any] = ()) -> dict[str, LayerSelection]:
    """{layer: LayerSelection} from `UnitRef`s (`.layer`, `.channel`), in their order, with each layer's LayerInfo."""
    infos = {info.name: info for info in layer_infos}
    channels: dict[str, list[int]] = {}
    for unit in units:
        channels.setdefault(unit.layer, []).append(int(unit.channel))
    return {name: LayerSelection(tuple(chosen), infos.get(name)) for name, chosen in channels.items()}


def reduce_to_units(output: Any, selection: LayerSelection) -> Tensor:
    """(B, n_units) float32 from a layer's output: its LayerInfo's reduction, else a mean over space / tokens.

    Without `info`: 4-D outputs are taken as (B, C, H, W), 3-D as (B, tokens, C), 2-D as (B, C) already — wrong for
    layers that work channels-last, such as the MLPs inside timm ConvNeXt blocks (B, H, W, C): give their LayerInfo.
    """
    if isinstance(output, (tuple, list)):
        output = output[0]
    if selection.info is not None:
        from benchmark.models.units import layer_output_to_units  # lazy: models import heavy backends

        return layer_output_to_units(output, selection.info).float()
    if output.ndim == 4:
        return output.mean(dim=(2, 3), dtype=torch.float32)
    if output.ndim == 3:
        return output.mean(dim=1, dtype=torch.float32)
    if output.ndim == 2:
        return output.float()
    raise ConfigError(
        f"Cannot reduce a layer output of shape {tuple(output.shape)} to units; expected (B, C, H, W), "
        "(B, tokens, C) or (B, C). Pass the layer's LayerInfo in LayerSelection.info or a custom reducer."
    )


def collect_extremes(
    model: nn.Module,
    layers: Mapping[str, LayerSelection],
    loader: Iterable[Batch] | LoaderFactory,
    *,
    k: int = 200,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    channels_last: bool = True,
    checkpoint: CheckpointConfig | None = None,
    progress: bool = True,
    reducer: Reducer = reduce_to_units,
    early_stop: bool = True,
) -> dict[str, ExtremeSets]:
    """Per selected layer, the k most / least activating images of each sampled unit over the loader's images.

    The model is put in eval mode (its previous mode is restored) and moved to `device` (and to channels_last
    when asked); that move is left in place. `dtype` None means bf16 autocast on CUDA and float32 elsewhere.
    """
    device = torch.device(device)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k={k!r} must be a positive integer (the number of images kept per side and unit).")
    autocast_dtype = _resolve_dtype(dtype, device)
    _resolve_modules(model, layers)  # a wrong layer name fails before any checkpoint is read
    fingerprint = _fingerprint(model, layers, k, autocast_dtype, device, reducer, checkpoint)
    run = _Run(list(layers), k, device, fingerprint, checkpoint)
    recorder = _Recorder(dict(layers), reducer)
    with _hooked(model, layers, recorder, device, channels_last):
        try:
            with torch.inference_mode():
                for images, ids in _progress(_open_stream(loader, run.consumed), progress):
                    images = _to_device(images, device, channels_last)
                    run.apply(recorder.forward(model, images, autocast_dtype, early_stop), ids)
            run.save(complete=True)
        except BaseException:
            run.save_after_interruption()
            raise
    if run.sets is None:  # no image at all
        return {name: ExtremeSets(len(sel.channels or ()), k, device=device) for name, sel in layers.items()}
    return run.per_layer()


def stream_unit_values(
    model: nn.Module,
    layers: Mapping[str, LayerSelection],
    batches: Iterable[Batch],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    channels_last: bool = True,
    reducer: Reducer = reduce_to_units,
    early_stop: bool = True,
) -> Iterator[tuple[Tensor, Tensor, dict[str, int]]]:
    """(values (B, U) float32 on `device`, ids (B,), {layer: units}) per batch: the units of all layers side by side.

    The same forward as `collect_extremes` (hooks, reduction, early stop, autocast), for passes that keep another
    state than the top/bottom-k sets (e.g. the rank bands of the hard query variants). Hooks are removed and the
    model's train/eval modes restored when the generator finishes or is closed.
    """
    device = torch.device(device)
    autocast_dtype = _resolve_dtype(dtype, device)
    recorder = _Recorder(dict(layers), reducer)
    names = list(layers)
    with _hooked(model, layers, recorder, device, channels_last):
        for images, ids in batches:
            with torch.inference_mode():
                outputs = recorder.forward(model, _to_device(images, device, channels_last), autocast_dtype, early_stop)
                values = torch.cat([outputs[name] for name in names], dim=1)
            if ids.device.type == "cpu":
                check_ids(ids)
            yield values, ids.to(device), {name: int(outputs[name].shape[1]) for name in names}


def collect_extremes_shared(
    jobs: Sequence[tuple[nn.Module, Mapping[str, LayerSelection]]],
    loader: Iterable[Batch],
    *,
    k: int = 200,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    channels_last: bool = True,
    progress: bool = True,
) -> list[dict[str, ExtremeSets]]:
    """`collect_extremes` for several models over ONE image stream: each batch is read and decoded once.

    The models must take the same input (one transform); the result per model equals its own `collect_extremes`
    pass. Not checkpointed: use it for many small models over a source whose decoding bounds the pass.
    """
    device = torch.device(device)
    autocast_dtype = _resolve_dtype(dtype, device)
    recorders = [_Recorder(dict(layers), reduce_to_units) for _, layers in jobs]
    runs = [_Run(list(layers), k, device, {}, None) for _, layers in jobs]
    with contextlib.ExitStack() as stack:
        for (model, layers), recorder in zip(jobs, recorders, strict=True):
            stack.enter_context(_hooked(model, layers, recorder, device, channels_last))
        with torch.inference_mode():
            for images, ids in _progress(loader, progress):
                images = _to_device(images, device, channels_last)
                for (model, _), recorder, run in zip(jobs, recorders, runs, strict=True):
                    run.apply(recorder.forward(model, images, autocast_dtype, True), ids)
    return [run.per_layer() for run in runs]


@contextlib.contextmanager
def _hooked(model: nn.Module, layers: Mapping[str, LayerSelection], recorder: _Recorder, device: torch.device,
            channels_last: bool) -> Iterator[None]:
    """`model` in eval mode on `device` with `recorder`'s hooks on the layers; on exit the hooks are removed and
    every module's train/eval mode is restored."""
    modules = _resolve_modules(model, layers)
    modes = {module: module.training for module in model.modules()}
    model.eval().to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    handles = [module.register_forward_hook(recorder.hook(name)) for name, module in modules.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training


class _StopForward(Exception):
    """Raised by the last needed hook to end a forward pass early (never escapes `_Recorder.forward`)."""


class _Recorder:
    """Forward hooks that reduce each selected layer's output to (B, U) and can end the forward early."""

    def __init__(self, layers: dict[str, LayerSelection], reducer: Reducer) -> None:
        self.layers = layers
        self.reducer = reducer
        self.outputs: dict[str, Tensor] = {}
        self.stop_after: str | None = None
        self._index: dict[str, Tensor | None] = {}

    def hook(self, name: str) -> Callable[[nn.Module, Any, Any], None]:
        """The forward hook of layer `name`."""

        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            if name in self.outputs:
                raise ConfigError(
                    f"Layer {name!r} ran more than once in one forward pass (a shared module), so its units' "
                    "activation is ambiguous; select a module that runs once per image."
                )
            units = self.reducer(output, self.layers[name])
            self.outputs[name] = self._select(name, units)
            if name == self.stop_after:
                raise _StopForward

        return record

    def forward(self, model: nn.Module, images: Tensor, autocast_dtype: torch.dtype | None, early_stop: bool) -> dict:
        """Run one batch; returns {layer: (B, U) float32} in firing order."""
        self.outputs = {}
        amp = (
            torch.autocast(images.device.type, dtype=autocast_dtype)
            if autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with amp, contextlib.suppress(_StopForward):
            model(images)
        missing = [name for name in self.layers if name not in self.outputs]
        if missing:
            raise ConfigError(
                f"Layer(s) {missing} never ran in the model's forward pass, so they have no activations; "
                "select modules that the forward pass calls."
            )
        if early_stop and self.stop_after is None:
            self.stop_after = next(reversed(self.outputs))  # the last selected layer to fire
        return self.outputs

    def _select(self, name: str, units: Tensor) -> Tensor:
        if name not in self._index:
            channels = self.layers[name].channels
            if channels is not None and max(channels, default=-1) >= units.shape[1]:
                raise ConfigError(
                    f"Layer {name!r} has {units.shape[1]} units, but channel {max(channels)} was selected; "
                    f"valid channels are 0..{units.shape[1] - 1}."
                )
            self._index[name] = None if channels is None else torch.tensor(channels, device=units.device)
        index = self._index[name]
        return units if index is None else units.index_select(1, index)


class _Run:
    """The pass's mutable state: the sets, the consumed count, and checkpointing (the sets split per layer)."""

    # ONE ExtremeSets holds the units of all layers, so a batch costs one update whatever the number of layers
    def __init__(
        self,
        names: list[str],
        k: int,
        device: torch.device,
        fingerprint: dict[str, Any],
        checkpoint: CheckpointConfig | None,
    ) -> None:
        self.names, self.k, self.device, self.fingerprint, self.checkpoint = names, k, device, fingerprint, checkpoint
        self.sets: ExtremeSets | None = None
        self.sizes: dict[str, int] = {}
        self.consumed = 0
        self.batches = 0
        self._applying = False
        saved = load_checkpoint(checkpoint, fingerprint) if checkpoint is not None else None
        if saved is not None and saved["sets"]:
            parts = [ExtremeSets.from_state_dict(saved["sets"][name], device=device) for name in names]
            self.sets = ExtremeSets.concat(parts)
            self.sizes = {name: part.n_units for name, part in zip(names, parts, strict=True)}
            self.consumed = int(saved["consumed"])
            log.info("Resuming the activation pass from %s at image %d.", checkpoint.path, self.consumed)

    def apply(self, outputs: Mapping[str, Tensor], ids: Tensor) -> None:
        """Fold one batch into the sets, then checkpoint if due."""
        if ids.device.type == "cpu":
            check_ids(ids)
        ids = ids.to(self.device, non_blocking=ids.device.type == "cpu" and ids.is_pinned())
        if self.sets is None:
            self.sizes = {name: int(outputs[name].shape[1]) for name in self.names}
            self.sets = ExtremeSets(sum(self.sizes.values()), self.k, device=self.device)
        for name in self.names:
            if outputs[name].shape[1] != self.sizes[name]:
                raise ConfigError(
                    f"Layer {name!r} gives {outputs[name].shape[1]} units but the resumed checkpoint holds "
                    f"{self.sizes[name]}; delete the checkpoint or pass another path."
                )
        values = torch.cat([outputs[name] for name in self.names], dim=1)
        self._applying = True
        self.sets.update(values, ids)
        self.consumed += int(ids.shape[0])
        self._applying = False
        self.batches += 1
        if self.checkpoint is not None and self.batches % self.checkpoint.every_n_batches == 0:
            self.save(complete=False)

    def per_layer(self) -> dict[str, ExtremeSets]:
        """{layer: its units' ExtremeSets} (ordinary tensors, not inference tensors)."""
        result, start = {}, 0
        for name in self.names:
            result[name] = self.sets.units(start, start + self.sizes[name])
            start += self.sizes[name]
        return result

    def save(self, *, complete: bool) -> None:
        """Write a checkpoint of the current state (no-op without a CheckpointConfig)."""
        if self.checkpoint is None:
            return
        sets = self.per_layer() if self.sets is not None else {}
        payload = {
            "fingerprint": encode_fingerprint(self.fingerprint),
            "consumed": self.consumed,
            "complete": complete,
            "sets": {name: part.state_dict() for name, part in sets.items()},
        }
        save_checkpoint(self.checkpoint.path, payload)

    def save_after_interruption(self) -> None:
        """Checkpoint what the completed batches gave, unless a batch was being folded in (state torn)."""
        if self.checkpoint is None or self._applying or self.batches == 0:
            return
        self.save(complete=False)
        log.warning(
            "Activation pass interrupted; state after %d images saved to %s.", self.consumed, self.checkpoint.path
        )


def _open_stream(loader: Iterable[Batch] | LoaderFactory, start: int) -> Iterable[Batch]:
    if not isinstance(loader, Iterable):
        if not callable(loader):
            raise ConfigError(
                f"loader must be an iterable of (images, ids) batches or a loader_factory(start), got {type(loader)}."
            )
        return loader(start)
    if not start:
        return loader
    log.info("The loader cannot start at an offset; reading and skipping the %d images already done.", start)
    return _skip(iter(loader), start)


def _skip(batches: Iterator[Batch], n: int) -> Iterator[Batch]:
    for images, ids in batches:
        if n >= len(ids):
            n -= len(ids)
            continue
        yield (images[n:], ids[n:]) if n else (images, ids)
        n = 0


def _to_device(images: Tensor, device: torch.device, channels_last: bool) -> Tensor:
    images = images.to(device, non_blocking=images.device.type == "cpu" and images.is_pinned())
    if channels_last and images.ndim == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    return images


def _progress(batches: Iterable[Batch], enabled: bool) -> Iterable[Batch]:
    if not enabled:
        return batches
    from tqdm.auto import tqdm

    total = len(batches) if hasattr(batches, "__len__") else None
    return tqdm(batches, desc="activations", unit="batch", total=total)


def _resolve_dtype(dtype: torch.dtype | None, device: torch.device) -> torch.dtype | None:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else None
    if dtype == torch.float32:
        return None
    if dtype in (torch.bfloat16, torch.float16):
        return dtype
    raise ConfigError(f"dtype must be None, torch.float32, torch.bfloat16 or torch.float16, got {dtype}.")


def _resolve_modules(model: nn.Module, layers: Mapping[str, LayerSelection]) -> dict[str, nn.Module]:
    if not layers:
        raise ConfigError("No layers selected; pass at least one {module_name: LayerSelection(...)}.")
    named = dict(model.named_modules())
    modules = {}
    for name, selection in layers.items():
        if not isinstance(selection, LayerSelection):
            raise ConfigError(f"layers[{name!r}] must be a LayerSelection, got {type(selection).__name__}.")
        if name not in named:
            import difflib

            close = difflib.get_close_matches(name, list(named), n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(
                f"The model has no module named {name!r}.{hint} Module names are those of model.named_modules()."
            )
        modules[name] = named[name]
    return modules


def _fingerprint(
    model: nn.Module,
    layers: Mapping[str, LayerSelection],
    k: int,
    autocast_dtype: torch.dtype | None,
    device: torch.device,
    reducer: Reducer,
    checkpoint: CheckpointConfig | None,
) -> dict[str, Any]:
    return {
        "run_info": dict(checkpoint.run_info) if checkpoint is not None else {},
        "layers": {name: _channels_json(sel.channels) for name, sel in sorted(layers.items())},
        "k": k,
        "dtype": str(autocast_dtype or torch.float32),
        "device_type": device.type,
        "reducer": f"{getattr(reducer, '__module__', '?')}.{getattr(reducer, '__qualname__', repr(reducer))}",
        "model_structure": model_structure_hash(model),
    }


def _channels_json(channels: Sequence[int] | None) -> list[int] | str:
    return "all" if channels is None else list(channels)
