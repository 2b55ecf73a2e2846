import pytest

from benchmark.api.errors import ConfigError
from benchmark.results.compare import compare_results, format_comparison
from benchmark.results.schema import ResultFile


def _result(scores, *, images="abc"):
    units = [{"layer": "l", "channel": i, "score": s} for i, s in enumerate(scores)]
    summary = {"n_units": len(scores), "mean": sum(scores) / len(scores), "p5": min(scores),
               "ci_low": min(scores), "ci_high": max(scores)}
    return ResultFile.model_validate({
        "benchmark_version": "0", "submission": {"id": "x", "source": "toy", "model": "m"},
        "protocol": {"task": {}, "image_source": {"kind": "shapes", "id": "s", "n_images": 1, "ids_sha256": images}},
        "proxy": {"name": "mis-pixel", "version": "1"},
        "scores": {"model": summary, "layers": [], "units": units},
        "provenance": {"package_version": "0", "python_version": "3", "device": "cpu", "dtype": "float32",
                       "seed": 0, "wall_time_s": 1.0, "date": "2026-01-01"},
    })


def test_a_consistent_paired_gain_is_significant():
    better = [0.6 + 0.01 * i for i in range(20)]
    worse = [s - 0.05 - 0.002 * (i % 3) for i, s in enumerate(better)]
    c = compare_results(_result(better), _result(worse), labels=("trained", "random"))
    assert c.n_pairs == 20 and c.difference == pytest.approx(0.052, abs=1e-3)
    assert 0.05 <= c.difference_ci[0] <= c.difference <= c.difference_ci[1] <= 0.054
    assert c.p_value < 1e-3
    assert format_comparison(c).startswith("trained 0.695 [0.600, 0.790] vs random")


def test_no_difference_is_not_significant():
    scores = [0.5, 0.6, 0.7, 0.55]
    c = compare_results(_result(scores), _result(scores))
    assert c.difference == 0 and c.p_value == 1.0


def test_results_on_different_images_cannot_be_paired():
    with pytest.raises(ConfigError, match="image source"):
        compare_results(_result([0.5, 0.6]), _result([0.5, 0.6], images="other"))
