"""The sharded activation pass without any engine: shard planning, the pass over one shard, and the exact merge.

A shard is a contiguous range [start, stop) of image indices of one source. The pass over a shard streams only
those images and labels each with its GLOBAL index in the source, so the shards' `ExtremeSets` hold the same
(value, id) keys a single pass would; `ExtremeSets.merge` keeps the top/bottom-k of a union under a total order,
so merging the shards' sets (in any order or grouping) gives exactly the single pass's sets, bit for bit.

Activations themselves can depend on the batch a image was computed in (float rounding of some kernels, notably
on GPUs), so `plan_shards(..., align=batch_size)` puts shard boundaries on multiples of the batch size: every
shard's batches are then exactly the single pass's batches, and the values match bit for bit on any device.

Nothing here imports Ray: `benchmark.distributed.ray_backend` sends `ShardJob.run` to Ray tasks, and
`run_shards_locally` runs the same jobs one after the other in this process (the reference, and the tests).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from benchmark.activations.checkpoint import CheckpointConfig
from benchmark.activations.collect import LayerSelection, Reducer, collect_extremes, layer_selections, reduce_to_units
from benchmark.activations.extremes import ExtremeSets
from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.stimuli.sources import ImageSource, Transform, make_loader

if TYPE_CHECKING:  # the models import heavy backends; the task imports them when it runs
    from benchmark.models.adapters import LoadedModel
    from benchmark.models.units import LayerInfo, UnitRef
    from benchmark.scoring.spec import ScoreSpec

ShardState = dict[str, dict[str, Any]]  # {layer: ExtremeSets.state_dict()}: what a shard task sends back


class ShardJob(Protocol):
    """What a shard task runs: `run(shard)` streams images `shard` and returns its per-layer set states."""

    n_images: int
    batch_size: int

    def run(self, shard: range) -> ShardState:
        """The per-layer `ExtremeSets.state_dict()`s of the images in `shard` (ids: global image indices)."""
        ...


# ------------------------------------------------------------------------------------------------ planning


def plan_shards(n_images: int, n_shards: int, *, align: int = 1) -> list[range]:
    """Split images [0, n_images) into at most `n_shards` contiguous, non-empty, near-equal ranges.

    Boundaries fall on multiples of `align` (use the batch size: see the module docstring), so there are at most
    ceil(n_images / align) shards; the shards' sizes differ by at most `align` images.
    """
    for name, value, low in (("n_images", n_images, 0), ("n_shards", n_shards, 1), ("align", align, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"plan_shards needs an integer {name} >= {low}, got {value!r}.")
    blocks = -(-n_images // align)  # ceil: the last block may be short
    n = min(n_shards, blocks)
    if n == 0:
        return []
    per, extra = divmod(blocks, n)
    shards, start_block = [], 0
    for i in range(n):  # the last shards take the extra blocks: the short final block then evens out
        stop_block = start_block + per + (i >= n - extra)
        shards.append(range(start_block * align, min(stop_block * align, n_images)))
        start_block = stop_block
    return shards


# ------------------------------------------------------------------------------------------------- merging


def merge_extremes(parts: Sequence[Mapping[str, ExtremeSets]]) -> dict[str, ExtremeSets]:
    """Merge shards' per-layer sets pairwise in a tree; exact, so the result equals one pass over all images."""
    if not parts:
        raise ConfigError("merge_extremes needs at least one shard's sets; the image range was empty.")
    names = list(parts[0])
    for i, part in enumerate(parts):
        if list(part) != names:
            raise ConfigError(
                f"Shard {i} has layers {list(part)}, but shard 0 has {names}; merge only shards of one layer selection."
            )
    return {name: _tree_merge([part[name] for part in parts]) for name in names}


def merge_states(states: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, ExtremeSets]:
    """Rebuild shards' sets from their `state_dict`s (as shard tasks return them) and merge them."""
    return merge_extremes([{name: ExtremeSets.from_state_dict(dict(s)) for name, s in state.items()}
                           for state in states])


def states_of(sets: Mapping[str, ExtremeSets]) -> ShardState:
    """{layer: state_dict} of per-layer sets: small CPU tensors, cheap to send between processes."""
    return {name: part.state_dict() for name, part in sets.items()}


def _tree_merge(sets: list[ExtremeSets]) -> ExtremeSets:
    while len(sets) > 1:
        paired = [sets[i].merge(sets[i + 1]) for i in range(0, len(sets) - 1, 2)]
        sets = paired + ([sets[-1]] if len(sets) % 2 else [])
    return sets[0]


# ------------------------------------------------------------------------------------------------- one shard


def collect_range(
    model: nn.Module,
    layers: Mapping[str, LayerSelection],
    source: ImageSource,
    transform: Transform,
    shard: range,
    *,
    k: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    num_workers: int = 0,
    checkpoint: CheckpointConfig | None = None,
    progress: bool = False,
    reducer: Reducer = reduce_to_units,
) -> dict[str, ExtremeSets]:
    """`collect_extremes` over images [shard.start, shard.stop) of `source`, ids = global image indices."""
    if shard.step != 1 or not 0 <= shard.start <= shard.stop <= len(source):
        raise ConfigError(f"A shard must be a contiguous range inside [0, {len(source)}], got {shard}.")
    pin = torch.device(device).type == "cuda"

    def stream(done: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        return make_loader(source, transform, batch_size=batch_size, num_workers=num_workers, pin_memory=pin,
                           start=shard.start + done, stop=shard.stop)

    return collect_extremes(model, layers, stream, k=k, device=device, dtype=dtype, checkpoint=checkpoint,
                            progress=progress, reducer=reducer)


def run_shards_locally(job: ShardJob, shards: Sequence[range]) -> dict[str, ExtremeSets]:
    """Run every shard of `job` in this process, one after the other, and merge (the engine-free reference)."""
    return merge_states(job.run(shard) for shard in shards)


# ------------------------------------------------------------------------------------------- a spec's shards


@dataclass(frozen=True)
class SpecShardJob:
    """The activation pass of one score spec, per shard: each task builds the model and the source from the spec.

    The driver records the identity of the weights (`weights_digest`), of the image list (`images_sha256`) and its
    device type; a task whose model, images or device type differ (another library version, a folder that differs
    between nodes, a task without the GPU the driver used) raises DataValidationError instead of merging different
    passes.
    """

    spec: ScoreSpec
    layers: dict[str, LayerSelection]
    k: int
    n_images: int
    images_sha256: str | None
    weights_digest: str
    device_type: str = "cpu"
    checkpoint_dir: Path | None = None

    @property
    def batch_size(self) -> int:
        """The spec's batch size (shard boundaries align to it)."""
        return self.spec.batch_size

    @classmethod
    def from_pass(
        cls,
        loaded: LoadedModel,
        source: ImageSource,
        units: list[UnitRef],
        layers: list[LayerInfo],
        spec: ScoreSpec,
        *,
        k: int,
        work_dir: Path | None,
    ) -> SpecShardJob:
        """The job of `score_submission`'s activation pass (the arguments of `ActivationPass`)."""
        return cls(spec=spec, layers=layer_selections(units, layers), k=k, n_images=len(source),
                   images_sha256=source.describe().get("ids_sha256"), weights_digest=weights_digest(loaded.module),
                   device_type=loaded.device.type,
                   checkpoint_dir=None if work_dir is None else Path(work_dir) / "shards")

    def run(self, shard: range) -> ShardState:
        """Build the model and source from the spec, check them, stream the shard; per-layer set states."""
        from benchmark.models.adapters import load_model
        from benchmark.scoring.pipeline import resolve_device
        from benchmark.scoring.spec import model_spec_of
        from benchmark.stimuli.sources import parse_image_source

        device = resolve_device(self.spec.device)
        if device.type != self.device_type:
            raise DataValidationError(
                f"This shard task computes on {device.type} but the driver on {self.device_type} (device "
                f"{self.spec.device!r}); give the tasks the driver's kind of device (GPUs per task > 0 for cuda, "
                "0 for cpu) so every shard computes like the driver's pass."
            )
        loaded = load_model(model_spec_of(self.spec), device=device)
        source = parse_image_source(self.spec.images)
        self._check(loaded.module, source)
        sets = collect_range(
            loaded.module, self.layers, source, loaded.transform, shard, k=self.k, batch_size=self.spec.batch_size,
            device=device, dtype=None if self.spec.dtype == "auto" else getattr(torch, self.spec.dtype),
            num_workers=self.spec.num_workers, checkpoint=self._checkpoint(shard), progress=False,
        )
        return states_of(sets)

    def _check(self, module: nn.Module, source: ImageSource) -> None:
        digest = weights_digest(module)
        if digest != self.weights_digest:
            raise DataValidationError(
                f"The model {self.spec.model!r} built in this shard task has other weights (sha256 {digest[:12]}) "
                f"than the driver's ({self.weights_digest[:12]}); install the same imi-bench, torch and model "
                "library versions (and weights files) on every node."
            )
        images = source.describe().get("ids_sha256")
        if len(source) != self.n_images or images != self.images_sha256:
            raise DataValidationError(
                f"The image source {self.spec.images!r} seen by this shard task ({len(source)} images, ids sha256 "
                f"{str(images)[:12]}) differs from the driver's ({self.n_images} images, "
                f"{str(self.images_sha256)[:12]}); put the images on a filesystem every node sees at the same path."
            )

    def _checkpoint(self, shard: range) -> CheckpointConfig | None:
        if self.checkpoint_dir is None:
            return None
        run_info = {"model": self.spec.model, "weights": self.weights_digest, "images": self.images_sha256,
                    "n_images": self.n_images, "shard": [shard.start, shard.stop]}
        return CheckpointConfig(self.checkpoint_dir / f"activations.{shard.start}-{shard.stop}.ckpt",
                                run_info=run_info)


def weights_digest(module: nn.Module) -> str:
    """sha256 over the module's parameters and buffers (names, dtypes, shapes and bytes), in state-dict order."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)};".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
