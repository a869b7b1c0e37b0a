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

This module is the one answer to "which Prometheus series does a contract metric yield": the usage
scan, the compat shims, ``check``, the invariants, the Prometheus lints and the renderers all ask it.
A metric yields its name in every strategy (``contract_series``), each with the series of its type
(``_bucket``/``_count``/``_sum`` of a histogram, classic or exponential, and its bare name for
the native histogram; the quantiles, ``_count`` and ``_sum`` of a summary); names written by the
contract win over another metric's translated name.
"""

from __future__ import annotations

import enum
import importlib.util
import os
import re
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from types import MappingProxyType, ModuleType
from typing import NamedTuple

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

# The series of one metric by type: suffix -> the part of the OTLP point it carries. A histogram,
# classic or exponential, has the classic series, and its bare name is the native histogram that
# Prometheus 3 stores (exponential ones from OTLP, classic ones with convert_histograms_to_nhcb).
_VALUE = MappingProxyType({"": "value"})
_HISTOGRAM = MappingProxyType({"": "histogram", "_bucket": "bucket", "_count": "count", "_sum": "sum"})
_PARTS: Mapping[MetricType, Mapping[str, str]] = MappingProxyType(
    {
        MetricType.HISTOGRAM: _HISTOGRAM,
        MetricType.EXPONENTIAL_HISTOGRAM: _HISTOGRAM,
        MetricType.SUMMARY: MappingProxyType({"": "quantile", "_count": "count", "_sum": "sum"}),
    }
)


class SeriesPart(NamedTuple):
    """Where a Prometheus series comes from: a contract metric (its OTLP name) and a part of its points,
    ``"value"`` (a sum's or gauge's), ``"histogram"`` (a native histogram), ``"bucket"``, ``"count"``,
    ``"sum"`` or ``"quantile"``."""

    metric: str
    part: str


@cache
def _exporter_mapping() -> ModuleType:
    """The Prometheus exporter's name mapping module, loaded on its own when it can be.

    Importing it the usual way runs the exporter package's ``__init__``, which imports the whole
    OpenTelemetry metrics SDK: 100-400 ms of every ``check`` and ``validate`` for a module that
    imports only ``re``. ``find_spec`` of the package locates it without running it.
    """
    package = importlib.util.find_spec("opentelemetry.exporter.prometheus")
    locations = package.submodule_search_locations if package is not None else None
    if locations:
        path = os.path.join(next(iter(locations)), "_mapping.py")
        spec = importlib.util.spec_from_file_location("otel_contract._prometheus_mapping", path)
        if spec is not None and spec.loader is not None and os.path.exists(path):
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except ImportError:  # a later exporter whose mapping imports its package: the usual way
                pass
            else:
                return module
    from opentelemetry.exporter.prometheus import _mapping

    return _mapping


def part_suffixes(metric_type: MetricType) -> Mapping[str, str]:
    """The series one metric of ``metric_type`` is exposed as: suffix -> part (``""`` is the bare name)."""
    return _PARTS.get(metric_type, _VALUE)


def escape_name(name: str) -> str:
    """A metric name with escaping (invalid characters to ``_``), as ``Underscore*`` strategies write it."""
    return str(_exporter_mapping().sanitize_full_name(name))


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
    translated = escape_name(name) if strategy.escapes else name
    if not strategy.adds_suffixes:
        return translated
    word = "ratio" if unit == "1" and metric_type is MetricType.GAUGE else _exporter_mapping().map_unit(unit or "")
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


@lru_cache(maxsize=4096)  # the shims ask on every data point; attribute keys are few and repeat
def label_name(key: str, strategy: TranslationStrategy = DEFAULT_STRATEGY) -> str:
    """The Prometheus label an attribute key becomes (the one label sanitizer: shims, renderers, adapters)."""
    return str(_exporter_mapping().sanitize_attribute(key)) if strategy.escapes else key


def metric_series(metric: Metric, *, aliases: bool = False) -> Mapping[str, SeriesPart]:
    """Every Prometheus series name ``metric`` yields in any translation strategy, with the part it
    carries; with ``aliases``, its aliases' too (a dashboard not migrated yet reads those)."""
    return contract_series((metric,), aliases=aliases)


def contract_series(metrics: Iterable[Metric], *, aliases: bool = False) -> Mapping[str, SeriesPart]:
    """Series name -> (contract metric, part), for every name the ``metrics`` yield in any translation
    strategy: the classic names first (as written, then escaped), then those with suffixes (the default
    strategy's ``hpa_app_consume_count_total``, and unescaped); a name another metric already yields
    keeps that metric. With ``aliases``, aliases yield their names (with the alias's unit) for their metric."""
    bases: list[tuple[Metric, str, str | None]] = []
    for metric in metrics:
        bases.append((metric, metric.name, metric.unit))
        if aliases:
            bases.extend((metric, alias.name, alias.unit or metric.unit) for alias in metric.aliases)
    names: dict[str, SeriesPart] = {}
    for strategy in _BY_PRECEDENCE:
        for metric, base, unit in bases:
            name = series_name(base, metric.type, unit, counter=is_counter(metric), strategy=strategy)
            for suffix, part in part_suffixes(metric.type).items():
                names.setdefault(name + suffix, SeriesPart(metric.name, part))
    return MappingProxyType(names)


_BY_PRECEDENCE = (
    TranslationStrategy.NO_TRANSLATION,
    TranslationStrategy.UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES,
    TranslationStrategy.UNDERSCORE_ESCAPING_WITH_SUFFIXES,
    TranslationStrategy.NO_UTF8_ESCAPING_WITH_SUFFIXES,
)


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
