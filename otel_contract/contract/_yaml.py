"""YAML that remembers where every key and value came from.

PyYAML's composer already knows the position of every node; we build plain ``dict``/``list``
subclasses from the node tree and keep those positions beside the data, so that a schema or
semantic error can name ``file:line:column`` even after includes were merged.
"""

from __future__ import annotations

from typing import Any

import yaml

from otel_contract.findings import Location

try:  # the C composer is much faster on large contracts; fall back when libyaml is absent
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how pyyaml was built
    _Loader = yaml.SafeLoader

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class YamlSyntaxError(Exception):
    def __init__(self, location: Location, reason: str) -> None:
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


class LocDict(dict[str, Any]):
    """A mapping with the location of the mapping, of each key and of each value."""

    loc: Location
    key_locs: dict[str, Location]
    value_locs: dict[str, Location]


class LocList(list[Any]):
    """A sequence with the location of the sequence and of each item."""

    loc: Location
    item_locs: list[Location]


def _location(file: str, node: yaml.Node) -> Location:
    mark = node.start_mark
    return Location(file, mark.line + 1, mark.column + 1)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.duplicate_keys: list[tuple[Location, str]] = []
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            items = LocList(self.build(child) for child in node.value)
            items.loc = _location(self.file, node)
            items.item_locs = [_location(self.file, child) for child in node.value]
            return items
        if node.tag == _TIMESTAMP_TAG:
            # Dates stay text: the schema checks their shape and JSON has no date type.
            return node.value
        return self._scalars.construct_object(node)

    def _mapping(self, node: yaml.MappingNode) -> LocDict:
        self._scalars.flatten_mapping(node)  # resolves YAML merge keys (<<: *anchor)
        result = LocDict()
        result.loc = _location(self.file, node)
        result.key_locs = {}
        result.value_locs = {}
        for key_node, value_node in node.value:
            key = self.build(key_node)
            # Contract keys are names: a key like 200 or true means a string to the author.
            key = str(key).lower() if isinstance(key, bool) else str(key)
            key_loc = _location(self.file, key_node)
            if key in result:
                self.duplicate_keys.append((key_loc, key))
            result[key] = self.build(value_node)
            result.key_locs[key] = key_loc
            result.value_locs[key] = _location(self.file, value_node)
        return result


def parse_yaml(text: str, file: str) -> tuple[Any, list[tuple[Location, str]]]:
    """The document in ``text`` with locations, and the duplicate keys found in it.

    An empty document is ``None``. Raises ``YamlSyntaxError`` with the position of the problem.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        reason = error.problem or "invalid YAML"
        if error.context:
            reason += f" ({error.context})"
        raise YamlSyntaxError(location, reason) from None
    except yaml.YAMLError as error:  # e.g. a reader error on a control character
        raise YamlSyntaxError(Location(file), str(error).replace("\n", " ")) from None
    if node is None:
        return None, []
    builder = _Builder(file)
    try:
        return builder.build(node), builder.duplicate_keys
    except yaml.MarkedYAMLError as error:  # a scalar that does not construct, e.g. a bad !!int
        mark = error.problem_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise YamlSyntaxError(location, error.problem or "invalid YAML value") from None


def locate(document: Any, path: tuple[str | int, ...], *, key: bool = False) -> Location | None:
    """The location of the value at ``path`` (or of its key), or of the nearest parent known."""
    node = document
    best: Location | None = getattr(document, "loc", None)
    for depth, part in enumerate(path, start=1):
        if isinstance(node, LocDict) and isinstance(part, str) and part in node:
            best = node.key_locs[part] if key and depth == len(path) else node.value_locs[part]
            node = node[part]
        elif isinstance(node, LocList) and isinstance(part, int) and 0 <= part < len(node):
            best = node.item_locs[part]
            node = node[part]
        else:
            break
    return best


def format_path(path: tuple[str | int, ...] | list[str | int]) -> str:
    """``('metrics', 3, 'attributes')`` -> ``metrics[3].attributes``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
