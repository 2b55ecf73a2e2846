"""The result summary names the proxy's human data as it is: simulated humans are never called humans."""

from __future__ import annotations

from benchmark.api.types import HumanDataOrigin
from benchmark.results.show import format_result
from tests.results.test_io import make_result


def test_result_summary_says_simulated_humans_for_simulated_validation():
    result = make_result()
    simulated = HumanDataOrigin(kind="simulated", source="sim", simulator={"seed": 0, "version": "2"})
    proxy = result.proxy.model_copy(update={"human_data": simulated, "validation": {
        "headline": {"value": 0.62, "ci_low": 0.47, "ci_high": 0.78}, "scheme": "lomo", "mode": "natural"}})
    text = format_result(result.model_copy(update={"proxy": proxy}))
    assert "with simulated humans 0.620" in text
    real = proxy.model_copy(update={"human_data": HumanDataOrigin(kind="real", source="zenodo:x")})
    assert "with humans 0.620" in format_result(result.model_copy(update={"proxy": real}))
