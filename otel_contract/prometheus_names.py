"""The names a contract metric and its attributes get in Prometheus, by translation strategy.

Between the contract (OpenTelemetry names, e.g. ``hpa_app_consume_count``, a monotonic sum) and the
PromQL a dashboard or an adapter writes stands whatever translated the names on the way in: the
Collector's Prometheus exporters, Prometheus' own OTLP receiver, or a Prometheus client library.
The strategies are Prometheus' ``otlp.translation_strategy`` values:

* ``UnderscoreEscapingWithSuffixes`` (the default everywhere): invalid characters become ``_``, the
  unit is appended as a word (``_seconds``, ``_bytes``, ``_per_second``; ``_ratio`` for a gauge of
  unit ``1``) and a monotonic sum gets ``_total``: ``hpa_app_consume_count_total``. Python's
  prometheus-client and every OpenMetrics exposition name counters the same way.
* ``UnderscoreEscapingWithoutSuffixes``: escaping only.
* ``NoUTF8EscapingWithSuffixes``: suffixes, no escaping (UTF-8 names, Prometheus 3).
* ``NoTranslation``: the contract's names as they are, e.g. a Go service scraped directly that
  exposes its counter as ``hpa_app_consume_count``.

Escaping and the unit words are those of the OpenTelemetry Python SDK's Prometheus exporter, imported
on first use: its package pulls in the SDK's metrics and prometheus-client (about 135 ms), which no
command should pay at start-up, ``--help`` included.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType, ModuleType

from otel_contract.contract.model import Metric, MetricType


class TranslationStrategy(enum.StrEnum):
    UNDERSCORE_ESCAPING_WITH_SUFFIXES = "UnderscoreEscapingWithSuffixes"
    UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES = "UnderscoreEscapingWithoutSuffixes"
    NO_UTF8_ESCAPING_WITH_SUFFIXES = "NoUTF8EscapingWithSuffixes"
    NO_TRANSLATION = "NoTranslation"

    @property
    def escapes(self) -> bool:
        return self.name.startswith("UNDERSCORE")

    @property
    def adds_suffixes(self) -> bool:
        return self.name.endswith("WITH_SUFFIXES")

    @classmethod
    def parse(cls, text: str) -> TranslationStrategy:
        for strategy in cls:
            if strategy.value.lower() == text.lower():
                return strategy
        raise ValueError(f"unknown translation strategy {text!r} (expected one of {', '.join(cls)})")


DEFAULT_STRATEGY = TranslationStrategy.UNDERSCORE_ESCAPING_WITH_SUFFIXES

# Prometheus 2.x names (what promtool and PromQL selectors accept); Prometheus 3 also takes UTF-8
# names, but only quoted.
_CLASSIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_CLASSIC_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TOTAL = "_total"


@cache
def _exporter_mapping() -> ModuleType:
    from opentelemetry.exporter.prometheus import _mapping

    return _mapping


def is_classic_name(name: str) -> bool:
    """Whether ``name`` is a metric name PromQL can write bare (Prometheus 2 accepts nothing else)."""
    return _CLASSIC_NAME.fullmatch(name) is not None


def is_classic_label(name: str) -> bool:
    """Whether ``name`` is a label name Prometheus 2 accepts (no ``:``, unlike metric names)."""
    return _CLASSIC_LABEL.fullmatch(name) is not None


def series_name(
    name: str,
    metric_type: MetricType,
    unit: str | None,
    *,
    counter: bool,
    strategy: TranslationStrategy = DEFAULT_STRATEGY,
) -> str:
    """The Prometheus name of an OTLP metric; a histogram's or summary's series add ``_bucket`` etc."""
    translated = str(_exporter_mapping().sanitize_full_name(name)) if strategy.escapes else name
    if not strategy.adds_suffixes:
        return translated
    word = "ratio" if unit == "1" and metric_type is MetricType.GAUGE else str(_exporter_mapping().map_unit(unit or ""))
    if counter:
        translated = translated.removesuffix(_TOTAL)
    if word and not translated.endswith("_" + word):
        translated += "_" + word
    return translated + _TOTAL if counter else translated


def metric_series_name(metric: Metric, strategy: TranslationStrategy = DEFAULT_STRATEGY) -> str:
    """``series_name`` of a contract metric (a sum is a counter unless the contract says it is not monotonic)."""
    return series_name(metric.name, metric.type, metric.unit, counter=is_counter(metric), strategy=strategy)


def is_counter(metric: Metric) -> bool:
    return metric.type is MetricType.SUM and metric.monotonic is not False


def label_name(key: str, strategy: TranslationStrategy = DEFAULT_STRATEGY) -> str:
    """The Prometheus label an attribute key becomes."""
    return str(_exporter_mapping().sanitize_attribute(key)) if strategy.escapes else key


def translated_names(metrics: Iterable[Metric], taken: Iterable[str]) -> Mapping[str, str]:
    """Prometheus name -> contract name, for the metrics whose default translation differs from their
    name (``hpa_app_consume_count_total`` -> ``hpa_app_consume_count``) and is not itself ``taken`` (a
    contract metric or alias), so that a scrape of a service the contract describes is read by its
    contract names, as the Collector's Prometheus receiver with name normalization reads it."""
    occupied = set(taken)
    names: dict[str, str] = {}
    for metric in metrics:
        translated = metric_series_name(metric)
        if translated != metric.name and translated not in occupied:
            names.setdefault(translated, metric.name)
    return MappingProxyType(names)
