"""The contract JSON Schema: valid Draft 2020-12, strict, self-describing, in step with the catalog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator

from otel_contract.contract import schema
from otel_contract.rules import RULES, Scope

from .conftest import REPO


def _objects(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, value in node.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{path}/{index}")


def test_schema_is_valid_draft_2020_12() -> None:
    document = schema()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


def test_every_object_with_named_keys_rejects_unknown_keys() -> None:
    for path, node in _objects(schema()):
        if "properties" in node and path != "#/$defs/autoscalingSignal/properties/behavior":
            assert node.get("additionalProperties") is False, path


def test_every_top_level_and_metric_key_has_a_description() -> None:
    document = schema()
    defs = document["$defs"]

    def described(prop: dict[str, Any]) -> bool:
        if "description" in prop:
            return True
        ref = prop.get("$ref", "")
        return ref.startswith("#/$defs/") and "description" in defs[ref.removeprefix("#/$defs/")]

    for section in (document["properties"], defs["metric"]["properties"], defs["shim"]["properties"]):
        undocumented = [key for key, prop in section.items() if key != "name" and not described(prop)]
        assert undocumented == []


def test_policy_keys_are_exactly_the_telemetry_rules() -> None:
    telemetry = [slug for slug, rule in RULES.items() if rule.scope & Scope.TELEMETRY]
    assert schema()["$defs"]["telemetryRule"]["enum"] == telemetry, "the schema's enum is not rules.py's: make docs"


def test_packaged_schema_is_the_file_in_the_repo() -> None:
    on_disk = json.loads((REPO / "otel_contract/contract/schema/contract-v1.schema.json").read_text())
    assert on_disk == schema()


def test_example_contracts_point_editors_at_the_schema() -> None:
    for path in (REPO / "contracts").rglob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("=", 1)[1]).resolve()
        assert target == (REPO / "otel_contract/contract/schema/contract-v1.schema.json").resolve(), path
