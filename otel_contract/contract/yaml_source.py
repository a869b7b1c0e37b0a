"""YAML that remembers where every key and value came from, read within fixed bounds.

PyYAML's parser already knows the position of every event; we compose the node tree from its events
and build plain ``dict``/``list`` subclasses from it, keeping those positions beside the data, so
that a schema or semantic error can name ``file:line:column`` even after includes were merged.

Every YAML input the project reads (contracts and their includes, pipeline configs, RFC front matter,
Prometheus rule files, contracts in git history) goes through this module, because YAML lets a few
hundred bytes describe gigabytes: nine nested anchors of nine aliases each (a "billion laughs")
build 9**9 nodes, an alias inside its own anchor builds an endless structure, and ten thousand
brackets exhaust the stack (and make libyaml's scanner quadratic). So reading is bounded: the input's
size, the nesting of collections (while parsing, before the scanner goes deep, and again while
building, where aliases nest anchors in anchors), and the number of nodes that aliases may add to a
document. Composing shares an anchored node among its aliases, so the cost is in building, which
counts every node it builds through an alias. A recursive alias is refused where it occurs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

import yaml

from otel_contract.findings import Location

try:  # the C parser is much faster on large inputs; fall back when libyaml is absent
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how pyyaml was built
    _Loader = yaml.SafeLoader

# The limits (README, "Limits and security"). Real contracts, configs and rule files nest fewer than
# 15 levels, use a handful of aliases, and stay far below a megabyte.
MAX_YAML_BYTES = 16 * 2**20
MAX_DEPTH = 100
MAX_ALIAS_NODES = 100_000

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"


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


# YAML's words for what a value is, for messages; bool before int, as a bool is an int to Python.
_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (dict, "a mapping"),
    (list, "a sequence"),
)


def yaml_kind(value: Any) -> str:
    """What ``value`` is in YAML's words ("a mapping", "a sequence", "a string", ...), for messages."""
    if value is None:
        return "null"
    return next((kind for python_type, kind in _KINDS if isinstance(value, python_type)), "a scalar")


def _location(file: str, node: yaml.Node) -> Location:
    return _at(file, node.start_mark)


def _at(file: str, mark: Any) -> Location:  # yaml.Mark, or libyaml's
    return Location(file, mark.line + 1, mark.column + 1)


# --- composing: events -> nodes, without recursion -------------------------------------------------


class _Events(Protocol):
    """The event side of PyYAML's parsers (typed here: the stubs leave it untyped)."""

    def get_event(self) -> Any: ...

    def peek_event(self) -> Any: ...

    def check_event(self, *choices: type[yaml.Event]) -> bool: ...

    def resolve(self, kind: type[yaml.Node], value: str | None, implicit: Any) -> str: ...


@dataclass(frozen=True, slots=True)
class _Document:
    root: yaml.Node
    aliases: dict[int, str]  # id of a node that stands for an alias -> the anchor's name


@dataclass(frozen=True, slots=True)
class _Open:
    """A collection whose end event has not come yet."""

    node: yaml.CollectionNode
    anchor: str | None
    items: list[yaml.Node]  # a mapping's keys and values, alternating


class _Composer:
    """The documents of a YAML stream as node trees, composed from the parser's events with an explicit
    stack (PyYAML's composers recurse once per level, and the C one crashes the process on deep input)."""

    def __init__(self, text: str, file: str) -> None:
        if len(text) > MAX_YAML_BYTES:
            raise YamlSyntaxError(
                Location(file), f"larger than {MAX_YAML_BYTES // 2**20} MiB, the most a YAML input may be"
            )
        self._file = file
        self._parser = cast(_Events, _Loader(text))
        self._parser.get_event()  # StreamStartEvent

    def next_document(self) -> _Document | None:
        """The next document, None at the end of the stream."""
        if self._parser.check_event(yaml.StreamEndEvent):
            return None
        self._parser.get_event()  # DocumentStartEvent
        document = self._compose()
        self._parser.get_event()  # DocumentEndEvent
        return document

    def extra_document(self) -> Location | None:
        """Where a document after the one read starts, if there is one."""
        if self._parser.check_event(yaml.StreamEndEvent):
            return None
        return _at(self._file, self._parser.peek_event().start_mark)

    def _compose(self) -> _Document:
        anchors: dict[str, yaml.Node] = {}
        aliases: dict[int, str] = {}
        stack: list[_Open] = []
        while True:
            event = self._parser.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                self._open(event, anchors, stack)
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                node = self._close(event, stack)
            else:
                if isinstance(event, yaml.AliasEvent):
                    node = self._alias(event, anchors, stack, aliases)
                else:
                    node = self._scalar(event, anchors)
                if stack:
                    stack[-1].items.append(node)
            if not stack:
                return _Document(node, aliases)

    def _scalar(self, event: Any, anchors: dict[str, yaml.Node]) -> yaml.Node:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._parser.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        self._anchor(event, node, anchors)
        return node

    def _open(self, event: Any, anchors: dict[str, yaml.Node], stack: list[_Open]) -> None:
        if len(stack) >= MAX_DEPTH:
            # Refused before the scanner goes deeper: libyaml's time per token grows with the depth.
            raise YamlSyntaxError(_at(self._file, event.start_mark), f"nested more than {MAX_DEPTH} levels deep")
        kind = yaml.SequenceNode if isinstance(event, yaml.SequenceStartEvent) else yaml.MappingNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._parser.resolve(kind, None, event.implicit)
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        self._anchor(event, node, anchors)
        if stack:
            stack[-1].items.append(node)
        stack.append(_Open(node, event.anchor, node.value if kind is yaml.SequenceNode else []))

    @staticmethod
    def _close(event: Any, stack: list[_Open]) -> yaml.Node:
        done = stack.pop()
        done.node.end_mark = event.end_mark
        if isinstance(done.node, yaml.MappingNode):
            done.node.value = list(zip(done.items[::2], done.items[1::2], strict=True))
        return done.node

    def _anchor(self, event: Any, node: yaml.Node, anchors: dict[str, yaml.Node]) -> None:
        if event.anchor is None:
            return
        if event.anchor in anchors:
            first = _at(self._file, anchors[event.anchor].start_mark)
            raise YamlSyntaxError(
                _at(self._file, event.start_mark), f"duplicate anchor &{event.anchor} (first on line {first.line})"
            )
        anchors[event.anchor] = node

    def _alias(
        self, event: Any, anchors: dict[str, yaml.Node], stack: list[_Open], aliases: dict[int, str]
    ) -> yaml.Node:
        """A node for the alias: the anchored node's tag and value (shared, not copied) at the alias's position."""
        where = _at(self._file, event.start_mark)
        target = anchors.get(event.anchor)
        if target is None:
            raise YamlSyntaxError(where, f"alias *{event.anchor} has no anchor &{event.anchor} before it")
        if any(open_.anchor == event.anchor for open_ in stack):
            line = _at(self._file, target.start_mark).line
            raise YamlSyntaxError(
                where,
                f"alias *{event.anchor} is inside its own anchor &{event.anchor} (line {line}): a recursive structure",
            )
        node: yaml.Node
        if isinstance(target, yaml.ScalarNode):
            node = yaml.ScalarNode(target.tag, target.value, event.start_mark, event.end_mark, style=target.style)
        else:
            assert isinstance(target, yaml.CollectionNode)
            node = type(target)(
                target.tag, target.value, event.start_mark, event.end_mark, flow_style=target.flow_style
            )
        aliases[id(node)] = event.anchor
        return node


# --- building: nodes -> located data, within the budget ----------------------------------------------


class _Builder:
    def __init__(self, file: str, aliases: dict[int, str]) -> None:
        self.file = file
        self.duplicate_keys: list[tuple[Location, str]] = []
        self._aliases = aliases
        self._scalars = yaml.SafeLoader("")
        self._through_aliases = 0  # nodes built while expanding an alias, nested expansions included
        self._outer_alias: yaml.Node | None = None  # the alias being expanded, outermost

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        """``node`` as data; ``depth`` is the number of collections around it."""
        if self._outer_alias is None and id(node) in self._aliases:
            self._outer_alias = node
            value = self._build(node, depth)
            self._outer_alias = None
            return value
        return self._build(node, depth)

    def _build(self, node: yaml.Node, depth: int) -> Any:
        if self._outer_alias is not None:
            self._through_aliases += 1
            if self._through_aliases > MAX_ALIAS_NODES:
                raise self._alias_error(
                    f"aliases would build more than {MAX_ALIAS_NODES} nodes (nested anchors and aliases multiply,"
                    " as in a YAML alias bomb)"
                )
        if isinstance(node, yaml.CollectionNode) and depth >= MAX_DEPTH:
            raise self._alias_error(f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, depth + 1)
        if isinstance(node, yaml.SequenceNode):
            items = LocList(self.build(child, depth + 1) for child in node.value)
            items.loc = _location(self.file, node)
            items.item_locs = [_location(self.file, child) for child in node.value]
            return items
        if node.tag == _TIMESTAMP_TAG:
            # Dates stay text: the schema checks their shape and JSON has no date type.
            return node.value
        if node.tag == _VALUE_TAG:  # a key "=" (YAML 1.1's value key) is just a name here
            return node.value
        try:
            return self._scalars.construct_object(node)
        except ValueError:  # e.g. !!int abc, or more digits than Python turns into an int
            kind = node.tag.rsplit(":", 1)[-1]
            raise YamlSyntaxError(
                _location(self.file, node), f"cannot be read as {kind} (quote it if it is meant as a string)"
            ) from None

    def _alias_error(self, reason: str) -> YamlSyntaxError:
        if self._outer_alias is None:  # pragma: no cover - the composer refused such a document already
            return YamlSyntaxError(Location(self.file), reason)
        name = self._aliases[id(self._outer_alias)]
        return YamlSyntaxError(_location(self.file, self._outer_alias), f"alias *{name}: {reason}")

    def _mapping(self, node: yaml.MappingNode, depth: int) -> LocDict:
        result = LocDict()
        result.loc = _location(self.file, node)
        result.key_locs = {}
        result.value_locs = {}
        # YAML merge keys (<<: *anchor, <<: [*a, *b]): the first mapping listed wins, the mapping's own
        # keys win over all, and a merged key that the mapping sets again is not a duplicate.
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for source in self._merged(value_node, depth):
                    for key, value in source.items():
                        if key not in result:
                            result[key] = value
                            result.key_locs[key] = source.key_locs[key]
                            result.value_locs[key] = source.value_locs[key]
        own: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.build(key_node, depth)
            # Contract keys are names: a key like 200 or true means a string to the author.
            key = str(key).lower() if isinstance(key, bool) else str(key)
            key_loc = _location(self.file, key_node)
            if key in own:
                self.duplicate_keys.append((key_loc, key))
            own.add(key)
            result[key] = self.build(value_node, depth)
            result.key_locs[key] = key_loc
            result.value_locs[key] = _location(self.file, value_node)
        return result

    def _merged(self, node: yaml.Node, depth: int) -> list[LocDict]:
        """The mappings a merge key's value names, built (aliases are counted like any other)."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                raise YamlSyntaxError(_location(self.file, source), "<< merges a mapping or a list of mappings")
            built = self.build(source, depth)
            assert isinstance(built, LocDict)
            merged.append(built)
        return merged


# --- entry points --------------------------------------------------------------------------------


def parse_yaml(text: str, file: str) -> tuple[Any, list[tuple[Location, str]]]:
    """The one document in ``text`` with locations, and the duplicate keys found in it.

    An empty document is ``None``. Raises ``YamlSyntaxError`` with the position of the problem, also
    for input beyond the limits (size, nesting, nodes built through aliases, recursive aliases).
    """
    try:
        composer = _Composer(text, file)
        document = composer.next_document()
        extra = composer.extra_document()
        if extra is not None:
            raise YamlSyntaxError(extra, "a second document (after ---) where one is expected")
        if document is None:
            return None, []
        builder = _Builder(file, document.aliases)
        return builder.build(document.root), builder.duplicate_keys
    except yaml.YAMLError as error:
        raise _syntax_error(error, file) from None


def parse_yaml_documents(text: str, file: str) -> list[Any]:
    """Every document in ``text`` (a stream of ``---``-separated documents), with locations; each is
    bounded as ``parse_yaml`` bounds one. Duplicate keys are not reported."""
    try:
        composer = _Composer(text, file)
        documents = []
        while (document := composer.next_document()) is not None:
            documents.append(_Builder(file, document.aliases).build(document.root))
        return documents
    except yaml.YAMLError as error:
        raise _syntax_error(error, file) from None


def _syntax_error(error: yaml.YAMLError, file: str) -> YamlSyntaxError:
    if not isinstance(error, yaml.MarkedYAMLError):  # e.g. a reader error on a control character
        return YamlSyntaxError(Location(file), str(error).replace("\n", " "))
    mark = error.problem_mark or error.context_mark
    location = _at(file, mark) if mark else Location(file)
    reason = error.problem or "invalid YAML"
    if error.context:
        reason += f" ({error.context})"
    return YamlSyntaxError(location, reason)


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
