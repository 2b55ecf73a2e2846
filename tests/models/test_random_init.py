import torch

from benchmark.models.adapters import load_model


def test_random_weights_are_reproducible_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a = load_model("timm:test_resnet.r160_in1k?pretrained=false").module.state_dict()
    b = load_model("timm:test_resnet.r160_in1k?pretrained=false").module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(torch.random.get_rng_state(), state)
