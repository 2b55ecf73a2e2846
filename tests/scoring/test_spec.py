import pytest

from benchmark.api.errors import ConfigError
from benchmark.scoring.spec import load_spec, parse_spec


def test_yaml_spec_round_trip(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "model: timm:resnet18\npretrained: false\nproxy: proxy.json\nimages: bundled:400\n"
        "units: {layers: ['layer*'], units_per_layer: 2}\nprotocol: {n_tasks: 10, n_references: 4}\n"
    )
    spec = load_spec(path)
    assert spec.model == "timm:resnet18" and not spec.pretrained
    assert spec.units.layers == ["layer*"] and spec.protocol.n_tasks == 10


def test_every_problem_is_listed_with_valid_fields():
    with pytest.raises(ConfigError) as info:
        parse_spec({"model": "timm:resnet18", "proxy": "p.json", "unit": 1, "protocol": {"n_tasks": 0}})
    message = str(info.value)
    assert "unit: Extra inputs" in message and "protocol.n_tasks" in message and "Valid fields:" in message


def test_depth_fractions_must_be_in_unit_interval():
    with pytest.raises(ConfigError, match=r"depth fractions must lie in \[0, 1\]"):
        parse_spec({"model": "m", "proxy": "p", "units": {"depth_fractions": [1.5]}})


def test_missing_or_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(bad)
    bad.write_text("- a list")
    with pytest.raises(ConfigError, match="mapping"):
        load_spec(bad)


def test_units_all_flag_sets_all_units():
    import argparse

    from benchmark.cli import score

    parser = argparse.ArgumentParser()
    score.add_parser(parser.add_subparsers())
    args = parser.parse_args(["score", "--model", "timm:resnet18", "--proxy", "p.json", "--units", "all",
                              "--layers", "layer4.*"])
    spec = score.build_spec(args)
    assert spec.units.all_units and spec.units.layers == ["layer4.*"]
    with pytest.raises(SystemExit):
        parser.parse_args(["score", "--units", "some"])
