"""Where a result's stimulus images live when the image source has no files of its own (bundled, Hub)."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def materialised_name(image_id: str) -> str:
    """The file name an image id is saved under in a result's `stimuli_dir`."""
    return f"{_UNSAFE.sub('_', image_id)}.png"
