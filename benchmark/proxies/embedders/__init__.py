"""Image embedders for the MIS proxy, and a content-hash cache so that each image is embedded once.

An embedder maps PIL images to L2-normalised float32 vectors, so that cosine similarity is a dot product and
every 2-AFC task of the MIS proxy becomes a matrix product. Torch embedders load their model lazily on the
first `embed` call; constructing one only validates its parameters, and `identity()` never needs the weights.

Registered embedders: "pixel" (no weights), "timm", "open_clip" and "dreamsim" (the optional `dreamsim` package).

Modules: `base` (the Embedder interface, the registry, `make_embedder` and shared checks), `torch_base` (the
torch machinery), `pixel`, `backbones` (timm and open_clip), `dreamsim` and `cache` (EmbeddingCache).
Importing this package imports every embedder module, which registers it in `embedders`.
"""

from benchmark.proxies.embedders.backbones import OpenClipEmbedder, TimmEmbedder
from benchmark.proxies.embedders.base import (
    RANDOM_INIT_SEED,
    Embedder,
    as_rgb_images,
    embedders,
    identity_hash,
    l2_normalise,
    make_embedder,
)
from benchmark.proxies.embedders.cache import EmbeddingCache, file_key, image_key
from benchmark.proxies.embedders.dreamsim import DreamSimEmbedder, default_dreamsim_dir
from benchmark.proxies.embedders.pixel import PixelEmbedder

__all__ = [
    "RANDOM_INIT_SEED",
    "DreamSimEmbedder",
    "Embedder",
    "EmbeddingCache",
    "OpenClipEmbedder",
    "PixelEmbedder",
    "TimmEmbedder",
    "as_rgb_images",
    "default_dreamsim_dir",
    "embedders",
    "file_key",
    "identity_hash",
    "image_key",
    "l2_normalise",
    "make_embedder",
]
