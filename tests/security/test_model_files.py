"""Model and proxy files are data: pickled Hub weights never run and end in a clear message; a hand-edited fitted
proxy is refused when it is loaded, before any model runs. (Local weight pickles: tests/models/test_adapters.py.)"""

from __future__ import annotations

import json
import os
import pickle

import pytest

from benchmark.api.errors import ConfigError, DataValidationError
from benchmark.proxies.fitted import load_fitted_proxy
from benchmark.scoring import pipeline
from benchmark.scoring.pipeline import score_submission
from benchmark.scoring.spec import parse_spec
from tests.fast_spec import FAST_SPEC


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hub_weights_blocked_by_weights_only_give_a_clear_message(tmp_path, monkeypatch):
    import timm.models._hub as timm_hub
    from huggingface_hub.errors import EntryNotFoundError

    from benchmark.models.adapters import load_model

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config.json").write_text(json.dumps({"architecture": "test_resnet", "num_classes": 10}))
    marker = tmp_path / "code-ran"
    (repo / "pytorch_model.bin").write_bytes(pickle.dumps({"conv.weight": _RunsCode(str(marker))}, protocol=2))

    def from_repo(repo_id, filename, revision=None, cache_dir=None, **kwargs):  # the Hub, served from tmp_path
        if not (repo / filename).is_file():
            raise EntryNotFoundError(f"{filename} is not in {repo_id}")
        return str(repo / filename)

    monkeypatch.setattr(timm_hub, "hf_hub_download", from_repo)
    with pytest.raises(ConfigError, match="were refused: they are a pickle that holds more than tensors") as info:
        load_model("timm:hf-hub:mallory/net")
    assert "safetensors" in str(info.value) and "local:PATH?arch=SOURCE:ARCH" in str(info.value)
    assert info.value.__cause__ is None and not marker.exists()


@pytest.fixture
def edited_proxy(tmp_path, fitted_proxy):
    def edit(**fitted_params):
        data = json.loads(fitted_proxy.read_text())
        data["fitted_params"] = {**data["fitted_params"], **fitted_params}
        for key in [k for k, v in fitted_params.items() if v is _DROP]:
            del data["fitted_params"][key]
        path = tmp_path / "edited.json"
        path.write_text(json.dumps(data))
        return path

    return edit


_DROP = object()


@pytest.mark.parametrize("edit, needle", [
    ({"temperature_": "hot"}, "needs the fitted number 'temperature_'"),
    ({"temperature_": -1.0}, "outside its valid range"),
    ({"temperature_": float("nan")}, "not a finite number"),
    ({"temperature_": float("inf")}, "not a finite number"),
    ({"temperature_": True}, "needs the fitted number"),
    ({"temperature_": _DROP}, "needs the fitted number 'temperature_', got None"),
    ({"bias": 1.0}, "does not end with '_'"),
])
def test_hand_edited_fitted_params_are_refused_at_load(edited_proxy, edit, needle):
    with pytest.raises(DataValidationError, match=needle):
        load_fitted_proxy(edited_proxy(**edit))


def test_empty_fitted_params_are_refused(tmp_path, fitted_proxy):
    data = json.loads(fitted_proxy.read_text())
    data["fitted_params"] = {}
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataValidationError, match="fitted_params is empty"):
        load_fitted_proxy(path)


def test_scoring_refuses_the_edited_proxy_before_loading_the_model(tmp_path, edited_proxy, monkeypatch):
    loaded = []
    monkeypatch.setattr(pipeline, "load_model", lambda *a, **k: loaded.append(a))
    spec = parse_spec({**FAST_SPEC, "proxy": str(edited_proxy(temperature_="hot")), "out": str(tmp_path / "r.json")})
    with pytest.raises(DataValidationError, match="temperature_"):
        score_submission(spec, progress=False)
    assert loaded == []
