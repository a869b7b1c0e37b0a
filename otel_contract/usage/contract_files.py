"""Which file of a contract (root or include) holds each metric's entry: what ``--write`` edits and
whose history dates ``since``.

Files are visited in the loader's merge order (each include's own includes first, the including file
last, a file included twice merged once), so the last file with an entry for a metric is the one
whose entry the merged contract uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otel_contract.contract.yaml_source import YamlSyntaxError, parse_yaml


def merge_order(root: Path) -> list[Path]:
    """``root`` and its includes, resolved, in the order the loader merges them."""
    order: list[Path] = []
    seen = {root.resolve()}

    def visit(path: Path, stack: tuple[Path, ...]) -> None:
        for entry in _includes(_load(path)):
            target = (path.parent / entry).resolve()
            if target in stack or target in seen or not target.is_file():
                continue  # a cycle or a missing file: lint_contract reports it
            seen.add(target)
            visit(target, (*stack, target))
        order.append(path)

    visit(root.resolve(), (root.resolve(),))
    return order


def defining_files(root: Path) -> dict[str, Path]:
    """Metric name -> the file whose entry for it the merged contract uses."""
    found: dict[str, Path] = {}
    for path in merge_order(root):
        for entry in _list(_load(path), "metrics"):
            if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                found[entry["name"]] = path
    return found


def _load(path: Path) -> Any:
    try:
        document, _ = parse_yaml(path.read_text("utf-8"), str(path))
    except YamlSyntaxError:
        return None  # lint_contract, which read the contract first, reports it
    return document


def _includes(document: Any) -> list[str]:
    return [entry for entry in _list(document, "include") if isinstance(entry, str)]


def _list(document: Any, key: str) -> list[Any]:
    value = document.get(key) if isinstance(document, Mapping) else None
    return value if isinstance(value, list) else []
