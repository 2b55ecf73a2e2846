"""The comparability key: which result files may be ranked beside each other.

Two results are comparable only when they share the benchmark version, the proxy's fingerprint (name, version, a
hash of its parameters and fitted parameters, and the human data it was fitted on), the image source (id and
revision, or the hash of its ordered image ids), the task protocol (N, K, query variant, tolerance) and the unit
sampling rule. The scoring pipeline stores the key in `ResultFile.comparability`; `comparability_of` recomputes it
for older files that lack it, so every view groups by the same key.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from benchmark.api.types import HumanDataOrigin

if TYPE_CHECKING:
    from benchmark.results.schema import ResultFile

KEY_CHARS = 12


class ComparabilityKey(BaseModel):
    """The parts that must match for two results to be ranked together, and a short id over all of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="sha256 (first 12 hex digits) over every other field")
    benchmark_version: str
    proxy: str = Field(description="proxy name and version, e.g. 'mis 1'")
    proxy_fingerprint: str = Field(description="hash of the proxy's name, version, params, fitted params, human data")
    human_data: str = Field(description="'real: SOURCE@REV', 'simulated: seed S, simulator V' or 'unknown'")
    real_humans: bool = Field(description="True only when the proxy was fitted on a real human release")
    image_source: str = Field(description="KIND:ID@REVISION, with the image-id hash when recorded")
    protocol: str = Field(description="N tasks, K references, query variant")
    unit_sampling: str = Field(description="the unit-selection rule, as canonical JSON")

    @property
    def label(self) -> str:
        """A one-line description for selectors (a local image folder by its last part, never its server path)."""
        humans = self.human_data if self.real_humans else f"DEMO ({self.human_data})"
        kind, _, rest = self.image_source.partition(":")
        images = f"{kind}:{rest.rsplit('/', 1)[-1]}" if rest.startswith(("/", "~")) else self.image_source
        return (f"v{self.benchmark_version} · {self.proxy} #{self.proxy_fingerprint[:6]} · {humans} · "
                f"{images} · {self.protocol} · units {self.unit_sampling}")


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def human_data_text(origin: HumanDataOrigin | None) -> str:
    """How the key names the human data a proxy was fitted on."""
    if origin is None:
        return "unknown"
    if origin.is_simulated:
        simulator = origin.simulator or {}
        return f"simulated: seed {simulator.get('seed')}, simulator {simulator.get('version')}"
    return f"real: {_release_name(origin.source)}@{origin.revision or 'unpinned'}"


def _release_name(source: str) -> str:
    """A release's name independent of where it sits on disk: a Hub id, "zenodo" (the record), else "local files".

    A local copy is identified by its revision (the sha256 of what was read), so the same files in two folders, or a
    result file moved elsewhere, keep one key.
    """
    if source.startswith("zenodo"):
        return "zenodo"
    if source.startswith("hf:") and not source[3:].startswith(("/", ".", "~")):
        return source.split("@", 1)[0]
    return "local files"


def proxy_fingerprint(name: str, version: str, params: dict[str, Any], fitted_params: dict[str, Any],
                      human_data: HumanDataOrigin | None) -> str:
    """sha256 (12 hex digits) of what makes two fitted proxies the same function."""
    return _digest({"name": name, "version": version, "params": params, "fitted_params": fitted_params,
                    "human_data": human_data_text(human_data)})[:KEY_CHARS]


def comparability_of(result: ResultFile) -> ComparabilityKey:
    """The stored key of `result`, or the key computed from its fields when the file predates the key."""
    stored = getattr(result, "comparability", None)
    return stored if stored is not None else compute_comparability(result)


def compute_comparability(result: ResultFile) -> ComparabilityKey:
    """Compute the comparability key of a result file from its version, proxy, image source, protocol and units."""
    proxy = result.proxy
    source = result.protocol.image_source
    task = result.protocol.task
    if source.kind == "folder" and source.ids_sha256:
        # A folder's path depends on the machine (and is stored relative to the result file): its images decide.
        image_source = f"folder ids#{source.ids_sha256[:16]}"
    else:
        image_source = f"{source.kind}:{source.id}@{source.revision or 'unpinned'}"
        if source.ids_sha256:
            image_source += f" ids#{source.ids_sha256[:8]}"
    protocol = (f"N={task.n_tasks} K={task.n_references} {task.query_variant} "
                f"tol={task.constant_unit_tolerance:g}")
    parts = {
        "benchmark_version": result.benchmark_version,
        "proxy": f"{proxy.name} {proxy.version}",
        "proxy_fingerprint": proxy_fingerprint(proxy.name, proxy.version, proxy.params, proxy.fitted_params,
                                               proxy.human_data),
        "human_data": human_data_text(proxy.human_data),
        "real_humans": proxy.human_data is not None and not proxy.human_data.is_simulated,
        "image_source": image_source,
        "protocol": protocol,
        "unit_sampling": json.dumps(result.protocol.unit_selection, sort_keys=True, separators=(",", ":"),
                                    default=str),
    }
    return ComparabilityKey(id=_digest(parts)[:KEY_CHARS], **parts)
