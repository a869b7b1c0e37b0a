"""Strict validation of generated Kubernetes autoscaling manifests against vendored upstream schemas.

``validate_hpa`` checks an ``autoscaling/v2`` HorizontalPodAutoscaler against the Kubernetes OpenAPI v3
definitions, ``validate_scaled_object`` a ``keda.sh/v1alpha1`` ScaledObject against KEDA's CRD; both files
live in ``tests/data/k8s`` (provenance in its README.md). The OpenAPI dialect is converted to JSON Schema
2020-12 and tightened the way ``kubectl apply --validate=strict`` behaves: unknown fields are errors,
``int32``/``int64`` are range-checked, ``Quantity`` must follow the Kubernetes quantity grammar.

A few value sets that the schemas only state in prose (and the API server enforces) are added as enums;
they are listed in ``_HPA_ENUMS`` and ``_KEDA_ENUMS`` so the additions are visible in one place.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

DATA = Path(__file__).resolve().parent / "data" / "k8s"
HPA_OPENAPI = DATA / "autoscaling-v2-hpa.openapi.json"
KEDA_CRD = DATA / "keda.sh_scaledobjects.yaml"

HPA_API_VERSION = "autoscaling/v2"
HPA_KIND = "HorizontalPodAutoscaler"
KEDA_API_VERSION = "keda.sh/v1alpha1"
KEDA_KIND = "ScaledObject"

_OPENAPI_REF = "#/components/schemas/"
_DEFS_REF = "#/$defs/"
_HPA_DEF = "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler"
_OBJECT_META_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_QUANTITY_FORMAT = "k8s-quantity"

# <signedNumber><suffix> from the grammar in the vendored Quantity description; the suffix may be empty.
_QUANTITY_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[eE][+-]?\d+|[mkMGTPE])?")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

# Keywords whose value is one schema, a list of schemas, or a name -> schema map (OpenAPI v3 subset).
_SCHEMA_KEYS = ("items", "not", "additionalProperties")
_SCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAP_KEYS = ("properties", "patternProperties")

_POLICY_TYPES = ("Pods", "Percent")
_SELECT_POLICIES = ("Max", "Min", "Disabled")
_METRIC_TARGET_TYPES = ("Utilization", "Value", "AverageValue")
_METRIC_SOURCES = {
    "ContainerResource": "containerResource",
    "External": "external",
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
}

# (definition, property) -> allowed values; the OpenAPI descriptions name them, the API server rejects others.
_HPA_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("io.k8s.api.autoscaling.v2.MetricSpec", "type"): tuple(_METRIC_SOURCES),
    ("io.k8s.api.autoscaling.v2.MetricTarget", "type"): _METRIC_TARGET_TYPES,
    ("io.k8s.api.autoscaling.v2.HPAScalingPolicy", "type"): _POLICY_TYPES,
    ("io.k8s.api.autoscaling.v2.HPAScalingRules", "selectPolicy"): _SELECT_POLICIES,
}

# Property path inside the CRD's openAPIV3Schema ("*" = array items) -> allowed values.
_BEHAVIOR = ("spec", "advanced", "horizontalPodAutoscalerConfig", "behavior")
_KEDA_ENUMS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("spec", "triggers", "*", "metricType"): _METRIC_TARGET_TYPES,
    **{(*_BEHAVIOR, rules, "policies", "*", "type"): _POLICY_TYPES for rules in ("scaleUp", "scaleDown")},
    **{(*_BEHAVIOR, rules, "selectPolicy"): _SELECT_POLICIES for rules in ("scaleUp", "scaleDown")},
}


def validate_hpa(manifest: Mapping[str, Any]) -> list[str]:
    """Error messages (empty when valid) for an ``autoscaling/v2`` HorizontalPodAutoscaler document."""
    return _errors(_hpa_validator(), manifest)


def validate_scaled_object(manifest: Mapping[str, Any]) -> list[str]:
    """Error messages (empty when valid) for a ``keda.sh/v1alpha1`` ScaledObject document."""
    return _errors(_keda_validator(), manifest)


def validate_manifest(manifest: Mapping[str, Any]) -> list[str]:
    """Validate by ``apiVersion``/``kind``; a pair this module has no schema for is itself an error."""
    if not isinstance(manifest, Mapping):
        return [f"(root): a manifest must be a mapping, not {type(manifest).__name__}"]
    key = (manifest.get("apiVersion"), manifest.get("kind"))
    if key == (HPA_API_VERSION, HPA_KIND):
        return validate_hpa(manifest)
    if key == (KEDA_API_VERSION, KEDA_KIND):
        return validate_scaled_object(manifest)
    known = f"{HPA_API_VERSION} {HPA_KIND}, {KEDA_API_VERSION} {KEDA_KIND}"
    return [f"(root): unsupported apiVersion/kind {key[0]!r}/{key[1]!r} (known: {known})"]


def _errors(validator: Draft202012Validator, manifest: Mapping[str, Any]) -> list[str]:
    messages = {msg for error in validator.iter_errors(_plain(manifest)) for msg in _messages(error)}
    return sorted(messages)


def _messages(error: ValidationError) -> list[str]:
    where = _json_path(error.absolute_path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        fields = error.instance if isinstance(error.instance, Mapping) else {}
        return [f"{where}: {field!r} is not a known field" for field in sorted(fields) if field not in known]
    return [f"{where}: {error.message}"]


def _json_path(parts: Iterable[str | int]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            path += f".{part}" if path else part
        else:
            # Label and annotation keys contain dots and slashes; bracket them so the path stays unambiguous.
            path += f"[{part!r}]"
    return path or "(root)"


def _plain(value: Any) -> Any:
    # jsonschema only treats dict as "object"; callers may hand over any Mapping.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@functools.cache
def _hpa_validator() -> Draft202012Validator:
    defs = _hpa_defs()
    return _compile(defs, {"$ref": _DEFS_REF + _HPA_DEF}, HPA_API_VERSION, HPA_KIND)


@functools.cache
def _keda_validator() -> Draft202012Validator:
    crd = yaml.safe_load(KEDA_CRD.read_text(encoding="utf-8"))
    group, version = KEDA_API_VERSION.split("/")
    if crd["spec"]["group"] != group or crd["spec"]["names"]["kind"] != KEDA_KIND:
        raise ValueError(f"{KEDA_CRD} does not define {KEDA_API_VERSION} {KEDA_KIND}")
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _to_json_schema(served["schema"]["openAPIV3Schema"])
    # The API server validates a custom resource's metadata as ObjectMeta whatever the CRD says.
    schema["properties"]["metadata"] = {"$ref": _DEFS_REF + _OBJECT_META_DEF}
    for path, allowed in _KEDA_ENUMS.items():
        _schema_at(schema, path)["enum"] = list(allowed)
    return _compile(_hpa_defs(), schema, KEDA_API_VERSION, KEDA_KIND)


def _compile(defs: dict[str, Any], body: dict[str, Any], api_version: str, kind: str) -> Draft202012Validator:
    envelope = {
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            # kubectl apply refuses an object without a name; generated manifests never use generateName.
            "metadata": {"required": ["name"]},
        },
    }
    schema = {"$schema": Draft202012Validator.META_SCHEMA["$id"], "$defs": defs, "allOf": [body, envelope]}
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_format_checker())


def _hpa_defs() -> dict[str, Any]:
    openapi = json.loads(HPA_OPENAPI.read_text(encoding="utf-8"))
    defs = {name: _to_json_schema(schema) for name, schema in openapi["components"]["schemas"].items()}
    defs[_QUANTITY_DEF] = {
        "description": "Kubernetes quantity: a string in the quantity grammar, or a plain number.",
        "type": ["string", "number"],
        "format": _QUANTITY_FORMAT,
    }
    for (name, prop), allowed in _HPA_ENUMS.items():
        defs[name]["properties"][prop]["enum"] = list(allowed)
    # The API server requires the member named by `type` ("must populate information for the given metric source").
    defs["io.k8s.api.autoscaling.v2.MetricSpec"]["allOf"] = [
        {"if": {"properties": {"type": {"const": kind}}, "required": ["type"]}, "then": {"required": [member]}}
        for kind, member in _METRIC_SOURCES.items()
    ]
    return defs


def _to_json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of one OpenAPI v3 schema as strict JSON Schema 2020-12; the input is left untouched."""
    out: dict[str, Any] = dict(node)
    for key in _SCHEMA_KEYS:
        if isinstance(node.get(key), Mapping):
            out[key] = _to_json_schema(node[key])
    for key in _SCHEMA_LIST_KEYS:
        if key in node:
            out[key] = [_to_json_schema(item) for item in node[key]]
    for key in _SCHEMA_MAP_KEYS:
        if key in node:
            out[key] = {name: _to_json_schema(item) for name, item in node[key].items()}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_OPENAPI_REF):
        out["$ref"] = _DEFS_REF + ref.removeprefix(_OPENAPI_REF)
    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
    if node.get("type") == "integer" and node.get("format") in _INT_RANGES:
        low, high = _INT_RANGES[node["format"]]
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    if node.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    strict = "additionalProperties" not in node and node.get("x-kubernetes-preserve-unknown-fields") is not True
    if "properties" in node and strict:
        out["additionalProperties"] = False
    return out


def _schema_at(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = schema
    for step in path:
        node = node["items"] if step == "*" else node["properties"][step]
    return node


@functools.cache
def _format_checker() -> FormatChecker:
    # Only our own format: jsonschema's optional formats depend on which extras happen to be installed.
    checker = FormatChecker(formats=())
    checker.checks(_QUANTITY_FORMAT)(_is_quantity)
    return checker


def _is_quantity(value: object) -> bool:
    # Numbers are fine too (kubectl accepts `value: 30`); the type keyword already rejects everything else.
    return not isinstance(value, str) or _QUANTITY_RE.fullmatch(value) is not None
