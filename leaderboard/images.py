"""Resolve a result file's image ids to image files, and draw placeholders for ids that cannot be resolved.

Rule: an id that is an absolute path of an existing file is used as is. A relative id is looked up under each
stimuli root in order: the `--stimuli-root` option, then the folder where scoring saved the images of a source
without files (`protocol.image_source.stimuli_dir`, files named by `materialised_name`), then the image source's folder recorded in the result
(`protocol.image_source.id`, without a `folder:` prefix, when it names an existing folder; a relative folder is
taken relative to the result file's folder), then the result file's own folder. The first existing file wins.
Anything else is unresolved and gets a placeholder tile; the viewer then says where the images were expected.
"""

from __future__ import annotations

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


def stimuli_roots(loaded: LoadedResult, override: str | Path | None = None) -> list[StimuliRoot]:
    """The folders relative image ids are looked up in, in order (see the module rule)."""
    roots: list[StimuliRoot] = []
    if override is not None:
        roots.append(StimuliRoot(Path(override).expanduser(), "--stimuli-root"))
    stimuli_dir = loaded.result.protocol.image_source.stimuli_dir
    if stimuli_dir:
        folder = Path(stimuli_dir).expanduser()
        roots.append(StimuliRoot(folder if folder.is_absolute() else loaded.path.parent / folder,
                                 "protocol.image_source.stimuli_dir", materialised=True))
    recorded = loaded.result.protocol.image_source.id.removeprefix("folder:")
    folder = Path(recorded).expanduser()
    if not folder.is_absolute():
        folder = loaded.path.parent / folder
    if recorded and folder.is_dir():
        roots.append(StimuliRoot(folder, "protocol.image_source.id"))
    roots.append(StimuliRoot(loaded.path.parent, "the result file's folder"))
    return roots


def resolve_image(image_id: str, roots: list[StimuliRoot]) -> Path | None:
    """The file an image id names under the module rule, or None when it cannot be found."""
    path = Path(image_id).expanduser()
    if path.is_absolute():
        return path if path.is_file() else None
    for root in roots:
        candidate = root.folder / (materialised_name(image_id) if root.materialised else path)
        if candidate.is_file():
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
