"""Proxy metrics that predict human interpretability scores, and the image embedders they use.

Importing the package registers every built-in proxy in `proxies`; torch is loaded only when an embedder needs it.
"""

from benchmark.proxies import baselines, learned, mis  # noqa: F401  (imported to register their proxies)
from benchmark.proxies.base import CalibratedProxy, ProxyMetric, ProxyUnit, make_proxy, proxies
from benchmark.proxies.plugins import FunctionProxy, load_metric, register_metric
from benchmark.proxies.units import ActivationMapSource, build_units

__all__ = [
    "ActivationMapSource",
    "CalibratedProxy",
    "FunctionProxy",
    "ProxyMetric",
    "ProxyUnit",
    "build_units",
    "load_metric",
    "make_proxy",
    "proxies",
    "register_metric",
]
