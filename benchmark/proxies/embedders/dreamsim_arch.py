"""The DreamSim ensemble's architecture built from timm and open_clip, for runs and tests without its weights.

DreamSim (Fu et al. 2023, the `dreamsim` package, type "ensemble") embeds an image with three ViT-B/16 backbones:
DINO (the CLS token of the last block, before the final norm, 768-d), OpenAI CLIP and LAION open_clip (the projected
image embedding, 512-d each). The image is resized to 224 x 224 (bicubic, no crop) and scaled to [0, 1]; each
backbone normalises it with its own mean and std (ImageNet for DINO, CLIP's for both CLIPs). The three features are
concatenated (1792-d), divided by their L2 norm and centred (the mean over features subtracted), as
`dreamsim.model.normalize_embedding` does; the distance is 1 - cosine similarity. LoRA adapters (rank 16 on every
`qkv`) only change weight values, so the inference graph is this one.

`DreamSimEnsemble.random(seed)` builds it with seeded random weights: the same shapes, preprocessing, feature
concatenation, normalisation and cost as the published model, with meaningless similarities.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image
from torch import Tensor, nn

IMAGE_SIZE = 224
DINO_MEAN, DINO_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
#: (name, embedding size) of the ensemble's backbones, in concatenation order
ENSEMBLE_BACKBONES: tuple[tuple[str, int], ...] = (("dino_vitb16", 768), ("clip_vitb16", 512), ("open_clip_vitb16", 512))


class _Normalised(nn.Module):
    """A backbone preceded by its own per-channel normalisation of [0, 1] images."""

    def __init__(self, backbone: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], features: Callable) -> None:
        super().__init__()
        self.backbone = backbone
        self.features = features
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return self.features(self.backbone, (images - self.mean.to(images.dtype)) / self.std.to(images.dtype))


def _dino_cls(vit: nn.Module, x: Tensor) -> Tensor:
    """The CLS token after the last block, before the final norm (DreamSim's DINO feature)."""
    x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
    return vit.blocks(x)[:, 0]


def _clip_embedding(visual: nn.Module, x: Tensor) -> Tensor:
    return visual(x)


class DreamSimEnsemble(nn.Module):
    """images (B, 3, 224, 224) in [0, 1] -> (B, 1792) DreamSim embeddings (normalised and centred)."""

    def __init__(self, dino: nn.Module, clip: nn.Module, open_clip_visual: nn.Module) -> None:
        super().__init__()
        self.extractors = nn.ModuleList([
            _Normalised(dino, DINO_MEAN, DINO_STD, _dino_cls),
            _Normalised(clip, CLIP_MEAN, CLIP_STD, _clip_embedding),
            _Normalised(open_clip_visual, CLIP_MEAN, CLIP_STD, _clip_embedding),
        ])

    @classmethod
    def random(cls, seed: int, *, width: int = 768, depth: int = 12, heads: int = 12) -> DreamSimEnsemble:
        """The architecture with random weights drawn from `seed` (the caller's RNG state is left alone).

        The defaults are ViT-B/16 (timm's vit_base_patch16_224 and open_clip's ViT-B-16 vision tower, QuickGELU for
        the OpenAI CLIP); smaller width/depth/heads give the same graph at toy size (tests).
        """
        import open_clip
        from open_clip.model import CLIPVisionCfg, _build_vision_tower
        from timm.models.vision_transformer import VisionTransformer

        vision = {**open_clip.get_model_config("ViT-B-16")["vision_cfg"], "width": width, "layers": depth}
        vision["head_width"] = width // heads
        embed_dim = open_clip.get_model_config("ViT-B-16")["embed_dim"]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            dino = VisionTransformer(img_size=IMAGE_SIZE, patch_size=16, embed_dim=width, depth=depth, num_heads=heads,
                                     num_classes=0)
            clip = _build_vision_tower(embed_dim, CLIPVisionCfg(**vision), quick_gelu=True)  # OpenAI CLIP: QuickGELU
            laion = _build_vision_tower(embed_dim, CLIPVisionCfg(**vision), quick_gelu=False)
        return cls(dino, clip, laion)

    def forward(self, images: Tensor) -> Tensor:
        return self.embed(images)

    def embed(self, images: Tensor) -> Tensor:
        """Concatenated backbone features, L2-normalised then centred, as `dreamsim` does with normalize_embeds."""
        features = torch.cat([extractor(images).float() for extractor in self.extractors], dim=-1)
        features = features / features.norm(dim=-1, keepdim=True)
        return features - features.mean(dim=-1, keepdim=True)


def preprocess(image: Image.Image) -> Tensor:
    """DreamSim's preprocessing: RGB, 224 x 224 bicubic resize (no crop), [0, 1] float (3, 224, 224)."""
    import torchvision.transforms.v2.functional as F

    resized = F.resize(image.convert("RGB"), [IMAGE_SIZE, IMAGE_SIZE], interpolation=F.InterpolationMode.BICUBIC)
    return F.to_dtype(F.pil_to_tensor(resized), torch.float32, scale=True)
