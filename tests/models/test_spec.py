import pytest
from pydantic import ValidationError

from benchmark.api.errors import ConfigError
from benchmark.models.spec import ModelSpec, make_model_spec, parse_model_spec

SHA = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("timm:resnet50.a1_in1k", dict(source="timm", name="resnet50.a1_in1k", pretrained=True)),
        ("timm:hf-hub:timm/resnet18.a1_in1k", dict(source="timm", name="hf-hub:timm/resnet18.a1_in1k")),
        ("timm:test_vit.r160_in1k?pretrained=false", dict(source="timm", name="test_vit.r160_in1k", pretrained=False)),
        ("open_clip:ViT-B-32/laion2b_s34b_b79k", dict(source="open_clip", name="ViT-B-32/laion2b_s34b_b79k")),
        ("torchvision:resnet50/IMAGENET1K_V2", dict(source="torchvision", name="resnet50/IMAGENET1K_V2")),
        ("timm:resnet50.a1_in1k?revision=abc123", dict(source="timm", revision="abc123")),
        (
            f"local:/w/model.safetensors?arch=timm:resnet18&sha256={SHA}",
            dict(
                source="local",
                name="model",
                weights="/w/model.safetensors",
                architecture="timm:resnet18",
                sha256=SHA,
                pretrained=False,
            ),
        ),
        ("timm:resnet18?weights=/w/ft.pt", dict(source="timm", name="resnet18", weights="/w/ft.pt", pretrained=False)),
    ],
)
def test_parse_forms_and_round_trip(text, expected):
    spec = parse_model_spec(text)
    for key, value in expected.items():
        assert getattr(spec, key) == value, key
    assert parse_model_spec(spec.to_string()) == spec


def test_local_spec_arch_helpers():
    spec = parse_model_spec("local:/w/x.pt?arch=torchvision:resnet50&name=my-model")
    assert (spec.arch_source, spec.arch_name, spec.name) == ("torchvision", "resnet50", "my-model")
    assert parse_model_spec(spec.to_string()) == spec
    timm_spec = parse_model_spec("timm:resnet18")
    assert (timm_spec.arch_source, timm_spec.arch_name) == ("timm", "resnet18")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("resnet50", "no SOURCE: prefix"),
        ("keras:resnet50", "Unknown model source 'keras'"),
        ("timm:", "names no model"),
        ("timm:resnet18?colour=red", "Unknown option 'colour'"),
        ("timm:resnet18?pretrained=maybe", "not a boolean"),
        ("local:/w/x.pt", "needs the architecture"),
        ("local:/w/x.pt?arch=keras:resnet", "is not SOURCE:NAME"),
        ("timm:resnet18?sha256=" + SHA, "no weights=PATH"),
        ("local:/w/x.pt?arch=timm:resnet18&sha256=xyz", "not 64 hexadecimal"),
        ("torchvision:resnet18?revision=v2", "revision"),
        ("timm:resnet18?revision=v2&pretrained=false", "loads none"),
        ("timm:resnet18?arch=timm:resnet50", "local: specs only"),
        ("timm:resnet18?weights=/w.pt&pretrained=true", "exclude each other"),
    ],
)
def test_bad_specs_raise_config_error_with_forms(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_model_spec(text)
    message = str(info.value)
    assert fragment in message
    if "Unknown option" not in message and "not a boolean" not in message:
        assert "timm:ARCH[.TAG]" in message  # the valid forms are listed


def test_spec_is_frozen_and_strict():
    spec = ModelSpec(source="timm", name="resnet18")
    with pytest.raises(ValidationError, match="frozen"):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="trust_remote_code"):
        make_model_spec(source="timm", name="resnet18", trust_remote_code=True)
