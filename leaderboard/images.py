"""Resolve a result file's image ids to image files inside allowed folders only, and draw placeholders otherwise.

Result files can come from strangers (a Hub dataset), so an image id never chooses a server path: an absolute id,
or one with a `..` part, is refused. A relative id is looked up under each allowed root in order: the configured
image roots (`--stimuli-root`), then the result's own stimuli folder (`protocol.image_source.stimuli_dir`, files
named by `materialised_name`; it must lie inside the result file's folder), then the image source's folder
recorded in the result (`protocol.image_source.id`) when that folder lies inside a configured root or the result
file's folder, then the result file's own folder. A candidate whose resolved path (symlinks followed) leaves its
root is refused. Anything else gets a placeholder tile, and the viewer says where the images were expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from benchmark.results.stimuli import materialised_name
from leaderboard.loading import LoadedResult

THUMBNAIL_PX = 224


@dataclass(frozen=True)
class StimuliRoot:
    """A folder image ids may be relative to, and where that folder came from."""

    folder: Path
    origin: str
    materialised: bool = False  # files are named by materialised_name(id), not by the id itself


def _inside(path: Path, folders: Sequence[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == f.resolve() or resolved.is_relative_to(f.resolve()) for f in folders)


def stimuli_roots(loaded: LoadedResult, override: str | Path | Sequence[str | Path] | None = None) -> list[StimuliRoot]:
    """The allowed folders relative image ids are looked up in, in order (see the module rule)."""
    configured = [] if override is None else [override] if isinstance(override, str | Path) else list(override)
    roots = [StimuliRoot(Path(folder).expanduser(), "--stimuli-root") for folder in configured]
    own = loaded.path.parent
    allowed = [own] + [root.folder for root in roots]
    stimuli_dir = loaded.result.protocol.image_source.stimuli_dir
    if stimuli_dir and not Path(stimuli_dir).is_absolute():
        folder = own / stimuli_dir
        if _inside(folder, [own]):
            roots.append(StimuliRoot(folder, "protocol.image_source.stimuli_dir", materialised=True))
    recorded = loaded.result.protocol.image_source.id.removeprefix("folder:")
    folder = Path(recorded).expanduser()
    if not folder.is_absolute():
        folder = own / folder
    if recorded and folder.is_dir() and _inside(folder, allowed):
        roots.append(StimuliRoot(folder, "protocol.image_source.id"))
    roots.append(StimuliRoot(own, "the result file's folder"))
    return roots


def resolve_image(image_id: str, roots: list[StimuliRoot]) -> Path | None:
    """The file an image id names inside one of `roots` (module rule), or None: never a path outside them."""
    path = Path(image_id)
    if path.is_absolute() or image_id.startswith("~") or ".." in path.parts or "\\" in image_id:
        return None
    for root in roots:
        candidate = root.folder / (materialised_name(image_id) if root.materialised else path)
        if candidate.is_file() and _inside(candidate, [root.folder]):
            return candidate
    return None


def expected_location(loaded: LoadedResult, roots: list[StimuliRoot]) -> str:
    """A sentence saying where a result's images were looked for and how to point the app at them."""
    source = loaded.result.protocol.image_source
    looked = "; ".join(f"{r.folder} ({r.origin})" for r in roots) or "no folder (none recorded or given)"
    return (
        f"Images were expected under: {looked}. The result's image source is {source.kind!r} {source.id!r}; "
        "start the leaderboard with `--stimuli-root DIR` pointing at a local copy of that image source "
        "(the ids are paths relative to it) to show them."
    )


def load_thumbnail(path: Path) -> Image.Image:
    """The image at `path` as an RGB thumbnail (at most THUMBNAIL_PX on a side); unreadable files get a placeholder."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            return image
    except (OSError, UnidentifiedImageError) as err:
        return placeholder(f"unreadable image:\n{path.name}\n{err.__class__.__name__}")


def placeholder(text: str) -> Image.Image:
    """A grey tile with `text` on it, shown in place of an image that could not be found or read."""
    image = Image.new("RGB", (THUMBNAIL_PX, THUMBNAIL_PX), (225, 225, 225))
    draw = ImageDraw.Draw(image)
    draw.rectangle((2, 2, THUMBNAIL_PX - 3, THUMBNAIL_PX - 3), outline=(150, 150, 150), width=2)
    lines = []
    for line in text.splitlines():
        lines.extend(line[i:i + 20] for i in range(0, max(len(line), 1), 20))
    font = ImageFont.load_default(size=17)
    draw.multiline_text((12, 40), "\n".join(lines[:10]), fill=(60, 60, 60), spacing=5, font=font)
    return image
