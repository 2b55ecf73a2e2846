import json

import numpy as np
import pytest

from benchmark.api.errors import ConfigError, DataValidationError, SourceUnavailableError
from benchmark.proxies.base import make_proxy
from benchmark.proxies.fitted import load_fitted_proxy, registry_name, save_fitted_proxy
from benchmark.proxies.learned import LearnedProxy


def test_round_trip_predicts_identically(sim_units, tmp_path):
    data = sim_units.mode("natural").subset(12)
    metric = make_proxy("mis-pixel").fit(data.units, data.accuracy)
    record = save_fitted_proxy(metric, tmp_path / "fitted.json", validation={"pearson": 0.8}, data={"source": "s"})
    loaded, loaded_record = load_fitted_proxy(tmp_path / "fitted.json")
    assert loaded_record == record and record.name == "mis-pixel" and record.validation["pearson"] == 0.8
    np.testing.assert_allclose(loaded.predict(data.units), metric.predict(data.units))


def test_unregistered_or_unserialisable_metrics_are_refused(sim_units, tmp_path):
    data = sim_units.mode("natural").subset(12)
    learned = LearnedProxy(regressor="gbr").fit(data.units, data.accuracy)
    assert registry_name(learned) == "learned"
    with pytest.raises(ConfigError, match="cannot be saved for scoring"):
        save_fitted_proxy(learned, tmp_path / "learned.json")
    assert not (tmp_path / "learned.json").exists()

    class Local(type(make_proxy("noise"))):
        pass

    with pytest.raises(ConfigError, match="not in the proxy registry"):
        registry_name(Local())


def test_bad_files_are_clear_errors(tmp_path, sim_units):
    with pytest.raises(SourceUnavailableError, match="imibench proxy fit"):
        load_fitted_proxy(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(DataValidationError, match="not a valid fitted proxy file"):
        load_fitted_proxy(bad)
    data = sim_units.mode("natural").subset(6)
    save_fitted_proxy(make_proxy("noise").fit(data.units, data.accuracy), bad)
    record = json.loads(bad.read_text())
    record["version"] = "0"
    bad.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="refit it"):
        load_fitted_proxy(bad)
