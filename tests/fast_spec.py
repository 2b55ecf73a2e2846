"""A score spec that runs in a few seconds on CPU, shared by scoring and submission tests."""

# A tiny timm model (random weights, 160 px) and a small protocol keep each scoring run to a few seconds on CPU.
FAST_SPEC = {
    "model": "timm:test_resnet.r160_in1k",
    "pretrained": False,
    "images": "bundled:80",
    "units": {"layers": ["layer*.bn1"], "units_per_layer": 2},
    "protocol": {"n_tasks": 5, "n_references": 4},
    "batch_size": 16,
    "device": "cpu",
}
