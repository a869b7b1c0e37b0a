"""Every broken contract in tests/contracts/broken is reported with its rule and file:line.

Each corpus file states what it expects in comments: ``# expect: RULE LINE [FILE]`` (FILE when
the finding is in another file, e.g. an include). The test asserts the exact multiset of
(rule, file, line) for every finding, so a missing or an extra finding fails.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from otel_contract import ContractUnreadable, lint_contract
from otel_contract.findings import Finding
from otel_contract.rules import RULES, Scope

from .conftest import BROKEN, TODAY

_EXPECT = re.compile(r"^# expect: (?P<rule>[a-z-]+) (?P<line>\d+)(?: (?P<file>\S+))?$", re.M)
CORPUS = sorted(BROKEN.glob("*.yaml"))


def _expected(path: Path) -> Counter[tuple[str, str, int]]:
    expected: Counter[tuple[str, str, int]] = Counter()
    for match in _EXPECT.finditer(path.read_text(encoding="utf-8")):
        assert match["rule"] in RULES, f"{path.name}: unknown rule {match['rule']}"
        expected[(match["rule"], match["file"] or path.name, int(match["line"]))] += 1
    return expected


def _findings(path: Path) -> tuple[Finding, ...]:
    try:
        return lint_contract(path, today=TODAY).findings
    except ContractUnreadable as error:
        return error.findings


# Rules judged against more than the file: missing-rfc compares the version with a git revision and
# reads the RFC directory (check --require-rfc), so a lone corpus file cannot show it; tests/test_rfc.py
# does, in a temporary git repository.
_NOT_FROM_ONE_FILE = {RULES["missing-rfc"].slug}


def test_corpus_covers_every_contract_rule() -> None:
    covered = {rule for path in CORPUS for (rule, _, _) in _expected(path)}
    contract_rules = {slug for slug, rule in RULES.items() if rule.scope & Scope.CONTRACT} - _NOT_FROM_ONE_FILE
    assert contract_rules <= covered, f"no corpus file for {sorted(contract_rules - covered)}"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_broken_contract_is_reported_with_rule_and_line(path: Path) -> None:
    expected = _expected(path)
    assert expected, f"{path.name} states no expectation"
    findings = _findings(path)
    actual = Counter(
        (f.rule.slug, Path(f.location.file).name if f.location else "", f.location.line if f.location else 0)
        for f in findings
    )
    assert actual == expected, "\n".join(str(f.location) + " " + f.rule.slug + " " + f.message for f in findings)
    for finding in findings:
        assert finding.location is not None and finding.location.column >= 1, finding
