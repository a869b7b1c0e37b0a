"""``render adapter``: prometheus-adapter discovery rules for the contract's autoscaling signals.

Pods and object signals become ``rules`` (the custom metrics API), external signals
``externalRules``. Each rule discovers exactly one series (``seriesQuery``), maps the labels that
name Kubernetes objects (``resources.overrides``; an external signal without a namespace attribute
is ``namespaced: false``, since the adapter would otherwise add the HPA's namespace to the query and
find nothing), renames it to the metric the HPA asks for (``name``), and says how to query it
(``metricsQuery``, a Go template with the adapter's ``<<.Series>>``, ``<<.LabelMatchers>>`` and
``<<.GroupBy>>``). A counter is read through ``rate()`` over the signal's ``rate_window``; a smoothed
signal reads the ``<metric>_smoothed`` series the sidecar emits, already a rate.

``--format config`` writes the adapter's config file; ``helm-values`` (the default) the ``rules:``
block of the prometheus-community/prometheus-adapter chart's values, with the chart's default rules
off, because they derive ``*_per_second`` metrics of their own that could shadow these.
"""

from __future__ import annotations

import re
from typing import Any

from otel_contract.autoscaling.signals import ResolvedSignal
from otel_contract.contract.model import Contract, SignalKind
from otel_contract.render import ArtefactOptions, RenderError, header, yaml_block, yaml_comment
from otel_contract.render._autoscaling import group_by_selector, is_custom, resolved_signals, strategy, value_query

FORMATS = ("helm-values", "config")

_SERIES = "<<.Series>>{<<.LabelMatchers>>}"
_GROUP_BY = "<<.GroupBy>>"


def render(contract: Contract, options: ArtefactOptions) -> str:
    fmt = options.adapter_format or FORMATS[0]
    if fmt not in FORMATS:
        raise RenderError(f"unknown adapter format {fmt!r} (expected {' or '.join(FORMATS)})")
    signals = resolved_signals(contract, options)
    custom = [rule(signal) for signal in signals if is_custom(signal)]
    external = [rule(signal) for signal in signals if not is_custom(signal)]
    lines = header(contract, "render adapter")
    lines += yaml_comment(f"Metric names follow the {strategy(options).value} translation strategy.")
    if not signals:
        lines += yaml_comment("The contract has no autoscaling: signals, so there is nothing to expose.")
    if fmt == "config":
        lines += yaml_block({"rules": custom, "externalRules": external})
    else:
        lines += yaml_comment("Values for the prometheus-community/prometheus-adapter Helm chart.")
        lines += yaml_block({"rules": {"default": False, "custom": custom, "external": external}})
    return "\n".join(lines) + "\n"


def rule(signal: ResolvedSignal) -> dict[str, Any]:
    """One discovery rule: the dict the adapter's config reads."""
    present = [
        *signal.resources.values(),
        *(label for label in signal.selector if label not in signal.resources.values()),
    ]
    series_query = signal.series + ("{" + ",".join(f'{label}!=""' for label in present) + "}" if present else "")
    resources: dict[str, Any]
    if signal.resources:
        resources = {"overrides": {label: {"resource": resource} for resource, label in signal.resources.items()}}
    else:
        resources = {"namespaced": False}
    by = _GROUP_BY if signal.kind is not SignalKind.EXTERNAL else group_by_selector(signal)
    return {
        "seriesQuery": series_query,
        "resources": resources,
        "name": {"matches": f"^{re.escape(signal.series)}$", "as": signal.api_name},
        "metricsQuery": value_query(signal, _SERIES, by),
    }
