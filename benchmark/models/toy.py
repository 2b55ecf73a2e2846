"""Toy architectures for the offline demo: small CNNs that train on CPU in seconds (model source `toy:`).

    toy:shapes_cnn?pretrained=false                     the architecture at random init (seeded by load_model)
    local:PATH.safetensors?arch=toy:shapes_cnn          weights trained by `benchmark.models.toy_training`

There are no hub weights for toy models: trained weights are local files, so `pretrained=true` is refused.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from benchmark.api.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def shapes_cnn(n_classes: int = 6, width: int = 16) -> nn.Module:
    """Four 3x3 conv blocks (conv, batch norm, ReLU, 2x2 max pool except the last), global pool, linear head."""
    channels = (3, width, 2 * width, 4 * width, 4 * width)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for block in range(1, 5):
        layers[f"conv{block}"] = nn.Conv2d(channels[block - 1], channels[block], 3, padding=1, bias=False)
        layers[f"bn{block}"] = nn.BatchNorm2d(channels[block])
        layers[f"relu{block}"] = nn.ReLU(inplace=True)
        if block < 4:
            layers[f"pool{block}"] = nn.MaxPool2d(2)
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(channels[-1], n_classes)
    return nn.Sequential(layers)


# name -> (constructor, input side in pixels)
TOY_ARCHITECTURES: dict[str, tuple[Callable[[], nn.Module], int]] = {"shapes_cnn": (shapes_cnn, 64)}


def build_toy(name: str, pretrained: bool) -> tuple[nn.Module, int]:
    """The named toy architecture (random init under the caller's seed) and its input side."""
    if name not in TOY_ARCHITECTURES:
        raise ConfigError(f"Unknown toy architecture {name!r}; valid: {', '.join(TOY_ARCHITECTURES)}.")
    if pretrained:
        raise ConfigError(
            f"Toy architecture {name!r} has no published weights. Use toy:{name}?pretrained=false for random "
            f"weights, or local:PATH.safetensors?arch=toy:{name} for weights trained with `imibench demo`."
        )
    constructor, side = TOY_ARCHITECTURES[name]
    return constructor(), side


def toy_transform(side: int) -> Callable[[Image.Image], torch.Tensor]:
    """RGB image -> normalised side x side float tensor (bilinear resize when the size differs)."""
    return v2.Compose([
        v2.PILToTensor(),
        v2.Resize((side, side), interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
