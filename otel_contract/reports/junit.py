"""JUnit XML for Jenkins' ``junit`` step (and the other CI systems that read the same dialect).

Shape, one ``<testsuite>`` per contract inside one ``<testsuites>``::

    <testsuites name="otel-contract validate" tests=.. failures=.. errors="0">
      <testsuite name="otel-contract validate ecommerce@1.4.0" tests=.. failures=.. errors="0" skipped=..>
        <properties>contract.name, contract.version, contract.source, data_points, ...</properties>
        <testcase classname="ecommerce.http_server_duration_seconds" name="missing-attribute http.method">
          <failure message="..." type="missing-attribute">the findings, with the rules hint</failure>
        </testcase>
        <testcase classname="ecommerce.http_requests_total" name="contract"/>      (a clean metric)
        <testcase classname="ecommerce.(contract)" name="baseline"><skipped .../></testcase>
      </testsuite>
    </testsuites>

What Jenkins reads, from jenkinsci/junit-plugin (``hudson.tasks.junit.SuiteResult.parse`` and
``CaseResult``): it walks ``<testsuite>`` elements at any depth, keeps a suite only if it has a
``<testcase>`` (so every suite here has at least one), names it from ``name``; per ``<testcase>`` it
takes ``classname`` (falling back to the suite name), ``name`` and ``time``; the case failed if it has
a ``<failure>`` or ``<error>`` child (``message`` attribute = the one-line details, element text =
the "stack trace"), was skipped if it has ``<skipped>``, and shows ``<system-out>``/``<system-err>``.
Jenkins counts cases itself and ignores the ``tests``/``failures`` attributes, which are written for
the other readers. ``classname`` splits at its last dot into package and class, so a contract is a
package and each metric a class; a dotted metric name (``http.server.duration``) is kept verbatim,
since reports must name metrics the way the rest of the tool does.

The output validates against the JUnit XSD of jenkinsci/xunit-plugin (``junit-10.xsd``), vendored under
``tests/data/junit/`` for the tests.

One case per (metric, rule, attribute) keeps test names stable from build to build, so Jenkins can
track "failing since"; several findings that share one (e.g. two ``invalid-pattern`` findings in a
contract) become one case listing all of them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from otel_contract.findings import Finding
from otel_contract.reports import RenderOptions, Report, label, visible
from otel_contract.rules import Level

CONTRACT_CASE = "contract"  # the passing case of a metric (or of the contract) with no failing finding
BASELINE_CASE = "baseline"  # the skipped case that counts findings a baseline file suppressed
_CONTRACT_CLASS = "(contract)"  # the class of findings about no particular metric

# XML 1.0 cannot carry most control characters, not even as references; telemetry can (attribute
# values, metric names), and one such character would make Jenkins reject the whole file.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class _Case:
    classname: str
    name: str
    failing: tuple[Finding, ...]
    passing: tuple[Finding, ...]
    skipped: str | None = None  # the <skipped message>, for the baseline case


def render(reports: Iterable[Report], options: RenderOptions | None = None) -> str:
    options = options or RenderOptions()
    root = ET.Element("testsuites", name=f"otel-contract {options.command}")
    totals = {"tests": 0, "failures": 0}
    for report in reports:
        cases = _cases(report, options.fail_on)
        suite = _suite(root, report, cases, options)
        totals["tests"] += len(cases)
        totals["failures"] += int(suite.get("failures", "0"))
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(root: ET.Element, report: Report, cases: Sequence[_Case], options: RenderOptions) -> ET.Element:
    failures = sum(1 for case in cases if case.failing)
    skipped = sum(1 for case in cases if case.skipped is not None)
    suite = ET.SubElement(
        root,
        "testsuite",
        name=_xml(f"otel-contract {options.command} {label(report)}"),
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",  # an unreadable input stops the run with exit 2; it never becomes a report
        skipped=str(skipped),
        file=_xml(report.source),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("contract.name", report.contract_name or ""),
        ("contract.version", report.contract_version or ""),
        ("contract.source", report.source),
        ("data_points", str(report.data_points)),
        ("rejected_data_points", str(report.rejected_data_points)),
        ("baselined", str(report.baselined)),
        ("fail_on", options.fail_on.label if options.fail_on is not None else "none"),
    ):
        ET.SubElement(properties, "property", name=name, value=_xml(value))
    for case in cases:
        _testcase(suite, case)
    return suite


def _testcase(suite: ET.Element, case: _Case) -> None:
    element = ET.SubElement(suite, "testcase", classname=_xml(case.classname), name=_xml(case.name))
    if case.failing:
        first = case.failing[0]
        more = len(case.failing) - 1
        message = first.message + (f" (and {more} more)" if more else "")
        failure = ET.SubElement(element, "failure", message=_xml(message), type=first.rule.slug)
        failure.text = _xml("\n\n".join(_details(f) for f in case.failing))
    if case.skipped is not None:
        ET.SubElement(element, "skipped", message=_xml(case.skipped))
    if case.passing:
        ET.SubElement(element, "system-out").text = _xml("\n\n".join(_details(f) for f in case.passing))


def _cases(report: Report, fail_on: Level | None) -> list[_Case]:
    """Every case of one suite: per subject (the contract, then each metric) its findings, then a
    passing ``contract`` case when none of its findings fails."""
    contract = _contract_class(report)
    by_subject: dict[str | None, dict[tuple[str, str | None], list[Finding]]] = {None: {}}
    by_subject.update((metric, {}) for metric in report.metrics)
    # Metrics the run did not list (unknown ones, say) follow the listed ones, in name order.
    unlisted = {f.metric for f in report.findings if f.metric is not None and f.metric not in by_subject}
    by_subject.update((metric, {}) for metric in sorted(unlisted))
    for finding in report.findings:
        by_subject[finding.metric].setdefault((finding.rule.slug, finding.attribute), []).append(finding)
    covered = {None, *report.metrics}  # subjects that get a passing case when clean
    cases: list[_Case] = []
    for subject, groups in by_subject.items():
        classname = f"{contract}.{subject if subject is not None else _CONTRACT_CLASS}"
        failed = False
        for (slug, attribute), findings in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or "")):
            failing = tuple(f for f in findings if _at_or_above(f, fail_on))
            passing = tuple(f for f in findings if not _at_or_above(f, fail_on))
            cases.append(_Case(classname, f"{slug} {attribute}" if attribute else slug, failing, passing))
            failed = failed or bool(failing)
        if not failed and subject in covered:
            cases.append(_Case(classname, CONTRACT_CASE, (), ()))
    if report.baselined:
        noun = "finding" if report.baselined == 1 else "findings"
        message = f"{report.baselined} {noun} suppressed by the baseline file"
        cases.append(_Case(f"{contract}.{_CONTRACT_CLASS}", BASELINE_CASE, (), (), skipped=message))
    return cases


def _at_or_above(finding: Finding, fail_on: Level | None) -> bool:
    return fail_on is not None and finding.level >= fail_on


def _contract_class(report: Report) -> str:
    """The package part of every classname: the contract id, or the file's stem when it is unknown."""
    if report.contract_name is not None:
        return report.contract_name
    return PurePath(report.source).stem.replace(".", "_") or "contract"


def _details(finding: Finding) -> str:
    """One finding in full, as the failure's "stack trace" or a passing case's output."""
    lines = [f"{finding.level.label}[{finding.rule.slug}] {finding.message}", f"count: {finding.count}"]
    if finding.metric:
        lines.append(f"metric: {finding.metric}")
    if finding.attribute:
        lines.append(f"attribute: {finding.attribute}")
    if finding.source:
        lines.append(f"source: {finding.source}")
    if finding.path:
        lines.append(f"path: {finding.path}")
    if finding.action is not None:
        lines.append(f"action: {finding.action.value}")
    lines.append(f"see: otel-contract rules {finding.rule.slug}")
    return "\n".join(lines)


def _xml(text: str) -> str:
    # Controls become readable escapes first; what XML still cannot carry (lone surrogates, U+FFFE) is replaced.
    return _NOT_XML.sub("\ufffd", visible(text))
