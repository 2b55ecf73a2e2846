import pytest

from benchmark.api.errors import ImiBenchError, RegistryError
from benchmark.api.registry import Registry


def test_register_get_and_list():
    reg: Registry[type] = Registry("proxy")

    @reg.register("mis")
    class Mis:
        pass

    assert reg.get("mis") is Mis
    assert reg.names() == ["mis"] and "mis" in reg and len(reg) == 1


def test_duplicate_name_raises():
    reg: Registry[int] = Registry("proxy")
    reg.add("a", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("a", 2)


def test_unknown_name_suggests_close_matches_and_lists_valid_names():
    reg: Registry[int] = Registry("embedder")
    for name in ("pixel", "timm", "open_clip"):
        reg.add(name, 0)
    with pytest.raises(RegistryError) as info:
        reg.get("pixle")
    message = str(info.value)
    assert "Unknown embedder 'pixle'" in message and "Did you mean 'pixel'" in message
    assert "open_clip, pixel, timm" in message
    assert isinstance(info.value, ImiBenchError)


def test_empty_name_is_rejected():
    with pytest.raises(RegistryError, match="non-empty"):
        Registry("x").add("", 1)
