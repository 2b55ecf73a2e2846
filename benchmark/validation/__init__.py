"""Proxy validation against human accuracy: metrics, held-out splits, the harness, reports and plots."""

from benchmark.validation.crossval import cross_validated_predictions
from benchmark.validation.harness import validate_metric, validate_metrics
from benchmark.validation.report import MetricReport, ValidationReport, read_report, write_report
from benchmark.validation.run import ValidationConfig, build_config, run_validation
from benchmark.validation.tables import comparison_table

__all__ = [
    "MetricReport",
    "ValidationConfig",
    "ValidationReport",
    "build_config",
    "comparison_table",
    "cross_validated_predictions",
    "read_report",
    "run_validation",
    "validate_metric",
    "validate_metrics",
    "write_report",
]
