"""Report formats: text, JSON (against the shipped schema), JUnit XML (against the XSD Jenkins' xUnit
plugin uses, and parsed back for what Jenkins' junit step reads), GitHub workflow commands and Markdown
(read back with a CommonMark + GFM-tables parser)."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from markdown_it import MarkdownIt

from otel_contract import rules
from otel_contract.findings import Finding, Location
from otel_contract.reports import FORMATS, RenderOptions, Report, github, junit, markdown, renderer, text
from otel_contract.reports import json as json_report
from otel_contract.rules import Action, Level

JUNIT_XSD = Path(__file__).parent / "data" / "junit" / "junit-10.xsd"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

DURATION = "http_server_duration_seconds"
REQUESTS = "http_requests_total"
QUEUE = "queue_depth"


def _missing_method(count: int = 12) -> Finding:
    return Finding.of(
        rules.MISSING_ATTRIBUTE,
        f"{DURATION}: a data point lacks required attribute 'http.method'",
        location=Location("captures/checkout.json"),
        metric=DURATION,
        attribute="http.method",
        count=count,
        action=Action.FLAG,
    )


def _unknown() -> Finding:
    return Finding.of(
        rules.UNKNOWN_METRIC,
        "'legacy_hits' is neither a contract metric nor an alias",
        location=Location("captures/checkout.json"),
        metric="legacy_hits",
    )


def _identity_conflict() -> Finding:  # a warning about a metric the contract covers
    return Finding.of(rules.IDENTITY_CONFLICT, f"{QUEUE}: two series collapsed", metric=QUEUE, count=3)


def _rfc_field() -> Finding:  # an info finding about the contract file, at a position
    return Finding.of(
        rules.RFC_FIELD,
        "stable metric lacks precision",
        location=Location("contracts/ecommerce.yaml", 14, 5),
        path="metrics[0]",
        metric=DURATION,
        level=Level.INFO,
    )


def _contract_level() -> Finding:  # about no metric at all
    return Finding.of(rules.EXPIRED_SHIM, "shim node_disk expired on 2024-03-18", location=Location("c.yaml", 40, 3))


def _report(*findings: Finding, **fields: Any) -> Report:
    values: dict[str, Any] = {
        "source": "contracts/ecommerce.yaml",
        "contract_name": "ecommerce",
        "contract_version": "1.4.0",
        "findings": tuple(findings),
        "data_points": 1200,
        "rejected_data_points": 7,
        "metrics": (DURATION, REQUESTS, QUEUE),
    }
    values.update(fields)
    return Report(**values)


def _all_levels() -> Report:
    return _report(_missing_method(), _unknown(), _identity_conflict(), _rfc_field(), _contract_level())


# --- registry ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_through_the_registry(fmt: str) -> None:
    output = renderer(fmt)([_all_levels()], RenderOptions(command="validate"))
    assert "missing-attribute" in output


def test_unknown_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'yaml'"):
        renderer("yaml")


# --- text -------------------------------------------------------------------------------------------


def test_text_is_one_compiler_style_line_per_finding() -> None:
    output = text.render([_all_levels()], RenderOptions())
    lines = output.splitlines()
    assert len(lines) == 5
    assert lines[0] == (
        "captures/checkout.json: error[missing-attribute]"
        f" {DURATION}: a data point lacks required attribute 'http.method' (x12)"
    )
    assert "contracts/ecommerce.yaml:14:5: info[rfc-field] metrics[0]: stable metric lacks precision" in lines
    assert "\x1b" not in output


def test_text_colours_level_and_rule_by_level_and_bolds_the_location() -> None:
    report = _all_levels()
    output = text.render([report], RenderOptions(color=True))
    lines = output.splitlines()
    assert lines[0].startswith("\x1b[1mcaptures/checkout.json\x1b[0m: \x1b[31merror[missing-attribute]\x1b[0m ")
    assert "\x1b[33mwarning[unknown-metric]\x1b[0m" in lines[1]
    assert "\x1b[1mcontracts/ecommerce.yaml:14:5\x1b[0m: \x1b[36minfo[rfc-field]\x1b[0m" in output
    # Without the escapes the coloured output is the plain one, and format_finding stays uncoloured.
    assert _ANSI.sub("", output) == text.render([report], RenderOptions(color=False))
    assert [text.format_finding(f) for f in report.findings] == _ANSI.sub("", output).splitlines()


def test_text_keeps_one_line_per_finding_and_never_prints_control_characters() -> None:
    finding = Finding.of(rules.INVALID_DATA_POINT, "bad\nname \x1b[2J\x00 here", location=Location("-"))
    line = text.format_finding(finding)
    assert line == "-: error[invalid-data-point] bad\\nname \\x1b[2J\\x00 here"
    assert text.render([_report(finding)]).count("\n") == 1


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        if self.closed:  # what io streams do
            raise ValueError("I/O operation on closed file")
        return self._tty


@pytest.mark.parametrize(
    ("tty", "env", "expected"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # no-color.org: an empty value does not count
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": ""}, False),
        (True, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, True),
        (False, {"CLICOLOR_FORCE": "1"}, True),
        (False, {"CLICOLOR_FORCE": "0"}, False),
        (False, {"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, False),
        (True, {"TERM": "dumb"}, False),
        (True, {"TERM": "xterm-256color"}, True),
    ],
)
def test_use_color_follows_the_tty_and_the_environment(tty: bool, env: dict[str, str], expected: bool) -> None:
    assert text.use_color(_Stream(tty), env) is expected


def test_use_color_is_false_for_a_closed_stream() -> None:
    stream = _Stream(True)
    stream.close()
    assert text.use_color(stream, {}) is False
    assert text.use_color(stream, {"FORCE_COLOR": "1"}) is True


def test_summary_names_contracts_by_name_and_version_or_file() -> None:
    reports = [_all_levels(), _report(source="broken.yaml", contract_name=None, contract_version=None)]
    assert text.summary(reports) == "13 errors, 4 warnings, 1 info in 2 contracts (ecommerce@1.4.0, broken.yaml)"


# --- JSON -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_validator() -> Draft202012Validator:
    schema = json_report.load_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_report_schema_is_shipped_draft_2020_12_with_an_id() -> None:
    schema = json_report.load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("/report-v1.schema.json")
    assert json.loads(Path(json_report.schema_path()).read_text(encoding="utf-8")) == schema


def test_json_with_every_level_matches_the_schema(report_validator: Draft202012Validator) -> None:
    output = json_report.render([_all_levels()], RenderOptions())
    assert output.count("\n") == 1
    document = json.loads(output)
    report_validator.validate(document)
    assert {f["level"] for f in document["findings"]} == {"error", "warning", "info"}
    assert document["summary"]["findings"] == {"error": 13, "warning": 4, "info": 1}
    assert document["contract"] == {"name": "ecommerce", "version": "1.4.0", "source": "contracts/ecommerce.yaml"}
    first = document["findings"][0]
    assert first == {
        "rule": "missing-attribute",
        "level": "error",
        "metric": DURATION,
        "attribute": "http.method",
        "count": 12,
        "message": f"{DURATION}: a data point lacks required attribute 'http.method'",
        "source": "captures/checkout.json",
        "path": None,
    }


def test_json_gives_one_line_per_report(report_validator: Draft202012Validator) -> None:
    unreadable = _report(source="contracts/broken.yaml", contract_name=None, contract_version=None, findings=())
    clean = _report(findings=(), baselined=4)
    output = json_report.render([_all_levels(), unreadable, clean], RenderOptions())
    lines = output.splitlines()
    assert len(lines) == 3
    documents = [json.loads(line) for line in lines]
    for document in documents:
        report_validator.validate(document)
    assert [d["contract"]["name"] for d in documents] == ["ecommerce", None, "ecommerce"]
    assert documents[2]["summary"]["baselined"] == 4


def test_report_schema_rejects_unknown_keys_and_levels(report_validator: Draft202012Validator) -> None:
    document = json.loads(json_report.render([_all_levels()]))
    document["summary"]["extra"] = 1
    with pytest.raises(ValidationError, match="extra"):
        report_validator.validate(document)
    document = json.loads(json_report.render([_all_levels()]))
    document["findings"][0]["level"] = "fatal"
    with pytest.raises(ValidationError, match="fatal"):
        report_validator.validate(document)


# --- JUnit ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(JUNIT_XSD))


def _junit(reports: list[Report], fail_on: Level | None = Level.ERROR, command: str = "validate") -> ET.Element:
    output = junit.render(reports, RenderOptions(fail_on=fail_on, command=command))
    assert output.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(output.encode("utf-8"))


def _cases(suite: ET.Element) -> dict[tuple[str, str], ET.Element]:
    cases = {(case.get("classname", ""), case.get("name", "")): case for case in suite.iter("testcase")}
    assert len(cases) == len(suite.findall("testcase")), "a (classname, name) pair appears twice"
    return cases


def _assert_counts_add_up(root: ET.Element) -> None:
    suites = root.findall("testsuite")
    for suite in suites:
        cases = suite.findall("testcase")
        failed = [c for c in cases if c.find("failure") is not None]
        skipped = [c for c in cases if c.find("skipped") is not None]
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(len(failed))
        assert suite.get("skipped") == str(len(skipped))
        assert suite.get("errors") == "0" and not [c for c in cases if c.find("error") is not None]
        assert cases, "Jenkins drops a suite without test cases"
    assert root.get("tests") == str(sum(int(s.get("tests", "-1")) for s in suites))
    assert root.get("failures") == str(sum(int(s.get("failures", "-1")) for s in suites))
    assert root.get("errors") == "0"


def test_junit_validates_against_the_junit_xsd(junit_schema: xmlschema.XMLSchema) -> None:
    reports = [
        _all_levels(),
        _report(baselined=2, findings=()),
        _report(source="b.yaml", contract_name=None, contract_version=None, findings=(_contract_level(),)),
    ]
    for fail_on in (Level.ERROR, Level.INFO, None):
        junit_schema.validate(junit.render(reports, RenderOptions(fail_on=fail_on)))


def test_junit_has_one_suite_per_report_with_counts_that_add_up() -> None:
    root = _junit([_all_levels(), _report(findings=(), baselined=2)])
    assert root.tag == "testsuites" and root.get("name") == "otel-contract validate"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["otel-contract validate ecommerce@1.4.0"] * 2
    _assert_counts_add_up(root)
    assert root.get("tests") == "12" and root.get("failures") == "2"


def test_junit_case_per_metric_and_rule_fails_only_at_or_above_fail_on() -> None:
    suite = _junit([_all_levels()]).findall("testsuite")[0]
    cases = _cases(suite)
    assert set(cases) == {
        ("ecommerce.(contract)", "expired-shim"),
        (f"ecommerce.{DURATION}", "missing-attribute http.method"),
        (f"ecommerce.{DURATION}", "rfc-field"),
        (f"ecommerce.{QUEUE}", "identity-conflict"),
        (f"ecommerce.{QUEUE}", "contract"),  # only a warning: still clean at fail-on error
        (f"ecommerce.{REQUESTS}", "contract"),
        ("ecommerce.legacy_hits", "unknown-metric"),
    }
    missing = cases[(f"ecommerce.{DURATION}", "missing-attribute http.method")].find("failure")
    assert missing is not None
    assert missing.get("type") == "missing-attribute"
    assert missing.get("message") == f"{DURATION}: a data point lacks required attribute 'http.method'"
    details = missing.text or ""
    assert "count: 12" in details and "source: captures/checkout.json" in details
    assert "see: otel-contract rules missing-attribute" in details
    assert cases[("ecommerce.(contract)", "expired-shim")].find("failure") is not None
    # Below the threshold the case passes and carries the finding in system-out.
    for key in [(f"ecommerce.{QUEUE}", "identity-conflict"), (f"ecommerce.{DURATION}", "rfc-field")]:
        assert cases[key].find("failure") is None
        assert "otel-contract rules" in (cases[key].findtext("system-out") or "")


def test_junit_fail_on_moves_the_line_between_failing_and_passing_cases() -> None:
    def failing(fail_on: Level | None) -> set[str]:
        suite = _junit([_all_levels()], fail_on=fail_on).findall("testsuite")[0]
        return {name for (_, name), case in _cases(suite).items() if case.find("failure") is not None}

    errors = {"missing-attribute http.method", "expired-shim"}
    warnings = {"identity-conflict", "unknown-metric"}
    assert failing(Level.ERROR) == errors
    assert failing(Level.WARNING) == errors | warnings
    assert failing(Level.INFO) == errors | warnings | {"rfc-field"}
    assert failing(None) == set()
    suite = _junit([_all_levels()], fail_on=Level.WARNING).findall("testsuite")[0]
    assert (f"ecommerce.{QUEUE}", "contract") not in _cases(suite)


def test_junit_clean_report_still_has_cases_for_jenkins() -> None:
    root = _junit([_report(findings=(), metrics=())], command="check")
    suite = root.findall("testsuite")[0]
    assert suite.get("name") == "otel-contract check ecommerce@1.4.0"
    assert list(_cases(suite)) == [("ecommerce.(contract)", "contract")]
    _assert_counts_add_up(root)


def test_junit_groups_findings_that_share_metric_rule_and_attribute() -> None:
    second = Finding.of(rules.EXPIRED_SHIM, "shim other expired", location=Location("c.yaml", 52, 3))
    suite = _junit([_report(_contract_level(), second, metrics=())]).findall("testsuite")[0]
    failure = _cases(suite)[("ecommerce.(contract)", "expired-shim")].find("failure")
    assert failure is not None
    assert failure.get("message") == "shim node_disk expired on 2024-03-18 (and 1 more)"
    assert "source: c.yaml:40:3" in (failure.text or "") and "source: c.yaml:52:3" in (failure.text or "")


def test_junit_reports_baselined_findings_as_a_skipped_case() -> None:
    root = _junit([_report(findings=(), baselined=3)])
    skipped = _cases(root.findall("testsuite")[0])[("ecommerce.(contract)", "baseline")].find("skipped")
    assert skipped is not None and skipped.get("message") == "3 findings suppressed by the baseline file"
    _assert_counts_add_up(root)


def test_junit_stays_well_formed_with_control_characters(junit_schema: xmlschema.XMLSchema) -> None:
    finding = Finding.of(rules.INVALID_DATA_POINT, "nul \x00 and esc \x1b & <tag>", metric="m\x07")
    output = junit.render([_report(finding)], RenderOptions())
    junit_schema.validate(output)
    failure = ET.fromstring(output.encode("utf-8")).find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "nul \\x00 and esc \\x1b & <tag>"


def test_junit_names_an_unreadable_contract_by_its_file() -> None:
    report = _report(source="contracts/broken.yaml", contract_name=None, contract_version=None, metrics=())
    suite = _junit([report], command="check").findall("testsuite")[0]
    assert suite.get("name") == "otel-contract check contracts/broken.yaml"
    assert {c for c, _ in _cases(suite)} >= {"broken.(contract)"}


# --- GitHub -----------------------------------------------------------------------------------------


def test_github_annotation_per_finding_with_level_and_location() -> None:
    lines = github.render([_all_levels()], RenderOptions()).splitlines()
    assert lines[0] == (
        "::error file=captures/checkout.json,title=otel-contract missing-attribute::"
        f"{DURATION}: a data point lacks required attribute 'http.method' (x12)"
    )
    assert lines[1].startswith("::warning file=captures/checkout.json,title=otel-contract unknown-metric::")
    assert lines[2] == "::warning title=otel-contract identity-conflict::queue_depth: two series collapsed (x3)"
    assert lines[3] == (
        "::notice file=contracts/ecommerce.yaml,line=14,col=5,title=otel-contract rfc-field::"
        "metrics[0]: stable metric lacks precision"
    )


def test_github_escapes_data_and_properties_like_the_toolkit() -> None:
    finding = Finding.of(
        rules.METRIC_NAME,
        "100% wrong:\r\nsee a, b",
        location=Location("dir,with:odd%name.yaml", 3, 0),
    )
    assert github.annotation(finding) == (
        "::error file=dir%2Cwith%3Aodd%25name.yaml,line=3,title=otel-contract metric-name::100%25 wrong:%0D%0Asee a, b"
    )
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github.escape_data("a:b,c%\r") == "a:b,c%25%0D"


@pytest.mark.parametrize("source", ["http://127.0.0.1:9100/metrics", "-", "-:4"])
def test_github_names_no_file_for_urls_and_stdin(source: str) -> None:
    finding = Finding.of(rules.POD_MAPPING, "no pod labels", location=Location(source))
    assert github.annotation(finding) == f"::warning title=otel-contract pod-mapping::{source}: no pod labels"


# --- Markdown ---------------------------------------------------------------------------------------


def _tables(output: str) -> list[list[list[str]]]:
    """Every table of ``output`` as rows of cell texts, read by a CommonMark parser with GFM tables."""
    tokens = MarkdownIt("commonmark").enable("table").parse(output)
    tables: list[list[list[str]]] = []
    row: list[str] = []
    cell: list[str] | None = None
    for token in tokens:
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            tables[-1].append(row)
        elif token.type in ("th_open", "td_open"):
            cell = []
        elif token.type in ("th_close", "td_close"):
            row.append("".join(cell or []))
            cell = None
        elif token.type == "inline" and cell is not None:
            for child in token.children or []:
                if child.type == "html_inline" and child.content == "<br>":
                    cell.append("\n")
                elif child.type in ("text", "code_inline"):
                    cell.append(child.content)
                else:  # anything else means a message turned into markup
                    cell.append(f"<{child.type}>")
    return tables


def test_markdown_heading_counts_and_findings_errors_first() -> None:
    output = markdown.render([_all_levels()], RenderOptions(fail_on=Level.ERROR, command="validate"))
    assert output.startswith("## otel-contract validate: ecommerce@1.4.0 ❌ failed\n")
    assert "Fail on: **error**" in output
    counts, findings = _tables(output)
    assert counts == [
        ["errors", "warnings", "info", "data points", "rejected", "baselined"],
        ["13", "4", "1", "1200", "7", "0"],
    ]
    assert findings[0] == ["level", "rule", "metric", "attribute", "count", "message", "source"]
    assert [row[0] for row in findings[1:]] == ["error", "error", "warning", "warning", "info"]
    assert findings[2] == [
        "error",
        "missing-attribute",
        DURATION,
        "http.method",
        "12",
        f"{DURATION}: a data point lacks required attribute 'http.method'",
        "captures/checkout.json",
    ]


def test_markdown_verdict_follows_fail_on() -> None:
    warnings_only = _report(_unknown())
    assert "✅ passed" in markdown.render([warnings_only], RenderOptions(fail_on=Level.ERROR))
    assert "❌ failed" in markdown.render([warnings_only], RenderOptions(fail_on=Level.WARNING))
    assert "✅ passed" in markdown.render([_all_levels()], RenderOptions(fail_on=None))
    assert "No findings." in markdown.render([_report()], RenderOptions())


def test_markdown_escapes_cells_so_messages_read_back_unchanged() -> None:
    message = "a|b *not bold* _x_ `code` <b>html</b> [link](http://x) ~~s~~ &amp;\nsecond line"
    finding = Finding.of(
        rules.ATTRIBUTE_VALUE,
        message,
        metric="odd`name|x",
        attribute="``attr",
        location=Location("c.yaml", 2, 1),
    )
    output = markdown.render([_report(finding)], RenderOptions())
    assert "a\\|b" in output
    _, findings = _tables(output)
    assert len(findings) == 2 and all(len(row) == 7 for row in findings)
    assert findings[1][5] == message
    assert findings[1][2] == "odd`name|x"
    assert findings[1][3] == "``attr"


def test_markdown_folds_tables_longer_than_fifty_rows() -> None:
    def findings(n: int) -> tuple[Finding, ...]:
        return tuple(Finding.of(rules.UNKNOWN_METRIC, f"m{i} unknown", metric=f"m{i}") for i in range(n))

    short = markdown.render([_report(*findings(markdown.FOLD_ROWS))], RenderOptions())
    long = markdown.render([_report(*findings(markdown.FOLD_ROWS + 1))], RenderOptions())
    assert "<details>" not in short
    assert "<details><summary>51 findings</summary>" in long and long.rstrip().endswith("</details>")
    assert len(_tables(long)[1]) == markdown.FOLD_ROWS + 2  # header row and every finding, still a table


def test_markdown_renders_one_section_per_report() -> None:
    other = _report(contract_name="hpa-app", contract_version="0.3.0", findings=())
    output = markdown.render([_all_levels(), other], RenderOptions(command="check"))
    headings = [line for line in output.splitlines() if line.startswith("## ")]
    assert headings == [
        "## otel-contract check: ecommerce@1.4.0 ❌ failed",
        "## otel-contract check: hpa-app@0.3.0 ✅ passed",
    ]
