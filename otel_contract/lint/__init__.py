"""Lints: checks on telemetry that need no contract metric, only conventions.

``PrometheusLinter`` reports what ``promtool check metrics`` reports (missing help, counter and unit
naming, reserved suffixes, labels and characters, camelCase, duplicate series) on OTLP metrics
export requests, each problem once per run, under the ``prom-*`` rules of the catalog.
"""

from otel_contract.lint.prometheus import PROMETHEUS_RULES, PrometheusLinter, PromType, prometheus_type

__all__ = ["PROMETHEUS_RULES", "PromType", "PrometheusLinter", "prometheus_type"]
