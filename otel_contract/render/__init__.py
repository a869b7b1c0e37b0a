"""Generated artefacts: files for tools that cannot read the contract, rendered from it.

Every artefact is a pure function ``render(contract, options) -> str`` in its own module, listed in
``ARTEFACTS``; the command line (``otel-contract render ARTEFACT``) reads the contract and writes
the text. The output is deterministic (no timestamp, no tool version, no path) so that a rendered
file committed next to the contract changes only when the contract does.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any

import yaml

from otel_contract.contract.model import Contract


class RenderError(ValueError):
    """The options or the contract ask for something the artefact cannot express (exit 2)."""


@dataclass(frozen=True, slots=True)
class ArtefactOptions:
    """Everything a renderer may need besides the contract; each artefact reads only its own fields."""

    today: date  # judges shim expiry; injected, because renderers read no clock
    group: str | None = None  # rules: the rule group's name
    interval: str | None = None  # rules: the rule group's evaluation interval
    schema_url: str | None = None  # schema: where the schema file is published
    translation_strategy: str | None = None  # adapter, hpa, keda: how the pipeline names metrics in Prometheus
    namespace: str | None = None  # hpa, keda: the namespace of the workloads
    prometheus_url: str | None = None  # keda: the Prometheus server the trigger queries
    adapter_format: str | None = None  # adapter: helm-values or config
    receiver_endpoint: str | None = None  # collector: the otlp receiver's host:port
    exporter_endpoint: str | None = None  # collector: the otlp_grpc exporter's host:port
    file: str | None = None  # collector: the file exporter's path instead
    processors_only: bool | None = None  # collector: only the processors and the pipelines' lists of them


# Fields of ArtefactOptions that a user sets per artefact (``today`` applies to all).
OPTION_FIELDS: tuple[str, ...] = (
    "group",
    "interval",
    "schema_url",
    "translation_strategy",
    "namespace",
    "prometheus_url",
    "adapter_format",
    "receiver_endpoint",
    "exporter_endpoint",
    "file",
    "processors_only",
)

Renderer = Callable[[Contract, ArtefactOptions], str]
# What of the contract an artefact cannot express, one line each (``render ARTEFACT --check``).
Checker = Callable[[Contract, ArtefactOptions], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Artefact:
    name: str
    summary: str  # what the file is for, shown by --help
    module: str  # the module under otel_contract.render that defines ``render``
    options: frozenset[str] = field(default_factory=frozenset)  # which OPTION_FIELDS it reads
    checked: bool = False  # its module also defines ``gaps`` (a Checker), so --check applies

    @property
    def render(self) -> Renderer:
        # Imported on demand: each renderer module imports this one for ArtefactOptions.
        module = importlib.import_module(f"otel_contract.render.{self.module}")
        renderer: Renderer = module.render
        return renderer

    @property
    def gaps(self) -> Checker:
        if not self.checked:
            raise ValueError(f"render {self.name} has no --check")
        checker: Checker = importlib.import_module(f"otel_contract.render.{self.module}").gaps
        return checker


ARTEFACTS: Mapping[str, Artefact] = MappingProxyType(
    {
        artefact.name: artefact
        for artefact in (
            Artefact(
                "rules",
                "Prometheus recording rules that keep the legacy series of the contract's compat: shims alive"
                " in Prometheus itself (load with rule_files:, check with promtool check rules)",
                "prometheus_rules",
                frozenset({"group", "interval"}),
            ),
            Artefact(
                "schema",
                "an OpenTelemetry schema file (file format 1.1.0) with the contract's metric aliases and attribute"
                " renames, for the Collector's schema processor and other schema-aware consumers",
                "otel_schema",
                frozenset({"schema_url"}),
            ),
            Artefact(
                "adapter",
                "prometheus-adapter rules (custom metrics for pods/object signals, external metrics for external"
                " ones) for the contract's autoscaling: signals, as the adapter's Helm chart values or its config file",
                "adapter",
                frozenset({"translation_strategy", "adapter_format"}),
            ),
            Artefact(
                "hpa",
                "autoscaling/v2 HorizontalPodAutoscaler manifests, one per scale target, reading the metrics the"
                " adapter rules expose",
                "hpa",
                frozenset({"translation_strategy", "namespace"}),
            ),
            Artefact(
                "keda",
                "KEDA ScaledObjects, one per scale target, with a Prometheus trigger per signal (no adapter needed)",
                "keda",
                frozenset({"translation_strategy", "namespace", "prometheus_url"}),
            ),
            Artefact(
                "collector",
                "an OpenTelemetry Collector configuration (otlp receiver, resource, transform and filter processors,"
                " an exporter) enforcing what the Collector can of the contract, listed rule by rule in its header",
                "collector",
                frozenset({"receiver_endpoint", "exporter_endpoint", "file", "processors_only"}),
                checked=True,
            ),
        )
    }
)


def artefact(name: str) -> Artefact:
    """The artefact called ``name`` (one of ``ARTEFACTS``)."""
    try:
        return ARTEFACTS[name]
    except KeyError:
        raise ValueError(f"unknown artefact {name!r} (expected one of {', '.join(ARTEFACTS)})") from None


# --- YAML building blocks shared by the renderers ---------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """SafeDumper that indents a list under its key, as Prometheus and the OpenTelemetry spec write them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        # An object used twice is written twice: &id001/*id001 in a generated file puzzles its reader.
        return True


# Line breaks PyYAML may write raw in single-quoted style, where a reader folds them into a space.
_UNUSUAL_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style: str | None = None
    if any(c in data for c in _UNUSUAL_BREAKS):
        style = '"'  # escapes (\N, \L, \P) read back as the same character
    elif "\n" in data.rstrip("\n") and not data.endswith("\n\n"):
        # A multi-line PromQL expression reads best as a literal block; the emitter falls back to
        # quotes by itself where a block cannot hold the text exactly (trailing spaces, CR, ...).
        # Not for trailing blank lines: "keep" chomping makes PyYAML end the document with "...".
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def yaml_block(data: Any, indent: int = 0) -> list[str]:
    """``data`` as YAML lines indented by ``indent`` spaces.

    Every scalar is quoted by the YAML emitter, never by hand, so any string round-trips exactly. A
    uniform indent keeps that true: continuation lines of a quoted scalar fold the same wherever
    they start, and a literal block's indentation counts from its parent's, which moves with it.
    """
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 30)
    prefix = " " * indent
    return [prefix + line if line else line for line in text.splitlines()]


# Characters a YAML stream may not contain at all (PyYAML's reader refuses them, in comments too).
_NON_PRINTABLE = re.compile("[^\x09\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def yaml_comment(text: str, indent: int = 0, *, first: str = "", rest: str = "") -> list[str]:
    """``text`` as comment lines: ``first`` before its first line, ``rest`` before the others.

    Contract strings may hold line breaks of any kind (a multi-line ``reason``) and, through escapes
    in double-quoted YAML, control characters; each break starts a new comment line and the rest
    are written as ``\\xNN`` so that the comment can never end early or make the file unreadable.
    """
    prefix = " " * indent + "#"
    lines = text.splitlines() or [""]
    out = []
    for number, line in enumerate(lines):
        shown = _NON_PRINTABLE.sub(lambda match: f"\\x{ord(match.group()):02x}", line)
        body = (first if number == 0 else rest) + shown
        out.append(f"{prefix} {body}".rstrip())
    return out


def header(contract: Contract, command: str) -> list[str]:
    """The comment every rendered file starts with: where it comes from and how to change it."""
    return [
        *yaml_comment(f"Generated by otel-contract from contract {contract.id}. Do not edit by hand:"),
        *yaml_comment(f"change the contract and run `otel-contract {command}` again."),
    ]


__all__ = [
    "ARTEFACTS",
    "OPTION_FIELDS",
    "Artefact",
    "ArtefactOptions",
    "Checker",
    "RenderError",
    "Renderer",
    "artefact",
    "header",
    "yaml_block",
    "yaml_comment",
]
