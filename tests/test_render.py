"""``otel-contract render``: Prometheus rule files from compat shims, OpenTelemetry schema files from renames.

Rule files are checked by the real ``promtool check rules``; schema files by a small reference
applier of the spec's transformations, which must turn legacy names into exactly what the engine
normalizes them to.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_contract.contract.model import Contract, Shim
from otel_contract.engine import process_metrics
from otel_contract.loading import lint_contract, load_contract
from otel_contract.render import (
    ARTEFACTS,
    ArtefactOptions,
    RenderError,
    artefact,
    otel_schema,
    prometheus_rules,
    yaml_block,
    yaml_comment,
)
from tests.conftest import CONTRACTS, REPO, TODAY, run_cli
from tests.otlp_builders import all_metrics, counter, gauge, histogram, hpoint, metrics_request
from tests.promtool import promtool_fixture  # noqa: F401 - the fixture

ECOMMERCE = CONTRACTS / "ecommerce.yaml"
OPTIONS = ArtefactOptions(today=TODAY)

# Several shims with what breaks naive YAML writing: quotes, regex matchers, '#' and ': ' in
# strings, a multi-line expr and reason, an expired shim and one with neither owner nor reason.
SHIMS_CONTRACT = """\
contract: legacy-shims
version: 2.3.0
metrics:
  - name: http_requests_total
    type: sum
    unit: '{request}'
    monotonic: true
  - name: http_server_duration_seconds
    type: histogram
    unit: s
compat:
  - record: job:http_requests:rate5m
    expr: 'sum by (job) (rate(http_requests_total{http_route=~"/api/.+|/v1/.*", code!~"2.."}[5m]))'
    labels:
      source: 'legacy "v1" dashboards'
      note: "a: b # not a comment"
    expires: 2027-01-31
    owner: 'team-checkout # on-call: #checkout'
    reason: |-
      Grafana board "HTTP overview": still reads the old name.
      # this line starts with a hash
      key: value, and a trailing colon:
  - record: http_request_duration_seconds_bucket
    expr: |-
      sum by (le, job) (
        rate(http_server_duration_seconds_bucket{job=~'checkout|cart'}[5m])
      )
    expires: 2024-03-18
    owner: sre-platform
    reason: alerting rules of the old stack; EXPIRED shims stay rendered until removed
    unit: s
  - record: legacy_requests_total
    expr: http_requests_total{http_route="/a#b"}
    labels: {legacy: 'true', level: '42'}
    expires: 2030-12-31
"""

VERSIONED_CONTRACT = """\
contract: versioned
version: 2.1.0
naming:
  metric_pattern: '^[a-z][a-z0-9_]*$'
attributes:
  renames: {http_status: http.status_code, status_code: http.status_code}
metrics:
  - name: queue_wait_seconds
    type: histogram
    unit: s
    since: 1.0.0
    aliases:
      - {name: queue.wait.time, unit: ms}
      - {name: queue_wait_time_seconds, unit: s}
    attributes:
      renames: {phase_name: phase, queue: queue.name}
  - name: jobs_processed_total
    type: sum
    unit: '{job}'
    monotonic: true
    since: 2.0.0
    aliases:
      - {name: jobs.processed}
  - name: disk_io_seconds_total
    type: sum
    unit: s
    monotonic: true
    aliases:
      - {name: disk.io.time}
    attributes:
      renames: {dev: device}
  - name: cache_hits_total
    type: sum
    unit: '{hit}'
    monotonic: true
    since: 1.5.0
"""


def _rendered_rules(contract: Contract, **options: Any) -> str:
    return prometheus_rules.render(contract, ArtefactOptions(**{"today": TODAY, **options}))


def _lint(path: Path) -> Contract:
    """The model of a schema-valid contract file, whatever the semantic checks say of it."""
    contract = lint_contract(path, today=TODAY).contract
    assert contract is not None
    return contract


def promtool_check_rules(promtool: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def _comments_above_rules(text: str) -> list[list[str]]:
    """The comment lines directly above each ``- record:`` line, in order."""
    blocks: list[list[str]] = []
    pending: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
        elif stripped.startswith("- record:"):
            blocks.append(pending)
            pending = []
        else:
            pending = []
    return blocks


# --- render rules --------------------------------------------------------------------------------


def test_registry_lists_every_artefact() -> None:
    assert tuple(ARTEFACTS) == ("rules", "schema", "adapter", "hpa", "keda", "collector")
    assert artefact("rules").render is prometheus_rules.render
    assert artefact("schema").render is otel_schema.render
    with pytest.raises(ValueError, match="unknown artefact 'grafana'"):
        artefact("grafana")


def test_ecommerce_rules_pass_promtool(promtool: str, tmp_path: Path) -> None:
    out = tmp_path / "compat.rules.yaml"
    result = run_cli("render", "rules", "-c", str(ECOMMERCE), "--today", TODAY.isoformat(), "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    check = promtool_check_rules(promtool, out)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 1 rules found" in check.stdout
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Generated by otel-contract from contract ecommerce@1.4.0. Do not edit by hand")
    contract = load_contract(ECOMMERCE, today=TODAY).contract
    shim = contract.compat[0]
    assert yaml.safe_load(text) == {
        "groups": [{"name": "otel-contract-compat-ecommerce", "rules": [{"record": shim.record, "expr": shim.expr}]}]
    }


def test_several_shims_pass_promtool_and_round_trip(promtool: str, tmp_path: Path, write: Any) -> None:
    contract = _lint(write("shims.yaml", SHIMS_CONTRACT))
    text = _rendered_rules(contract, group="legacy: dashboards #1", interval="1m30s")
    out = tmp_path / "rules.yaml"
    out.write_text(text, encoding="utf-8")
    check = promtool_check_rules(promtool, out)
    assert check.returncode == 0, check.stdout + check.stderr + text
    assert "SUCCESS: 3 rules found" in check.stdout

    (group,) = yaml.safe_load(text)["groups"]
    assert group["name"] == "legacy: dashboards #1"
    assert group["interval"] == "1m30s"
    expected = []
    for shim in contract.compat:
        rule: dict[str, Any] = {"record": shim.record, "expr": shim.expr}
        if shim.labels:
            rule["labels"] = dict(shim.labels)
        expected.append(rule)
    assert group["rules"] == expected
    # Byte for byte, the multi-line one included.
    assert [rule["expr"] for rule in group["rules"]] == [shim.expr for shim in contract.compat]
    assert "\n" in group["rules"][1]["expr"]


def test_rule_comments_say_owner_reason_and_expiry(write: Any) -> None:
    contract = _lint(write("shims.yaml", SHIMS_CONTRACT))
    first, expired, bare = _comments_above_rules(_rendered_rules(contract))
    assert first == [
        "compat shim job:http_requests:rate5m",
        "owner: team-checkout # on-call: #checkout",
        "expires: 2027-01-31",
        'reason: Grafana board "HTTP overview": still reads the old name.',
        "# this line starts with a hash",
        "key: value, and a trailing colon:",
    ]
    assert "owner: sre-platform" in expired
    assert "expires: 2024-03-18 -- EXPIRED on 2024-03-18 (judged on 2026-11-22): remove the shim" in expired
    assert "unit: s" in expired
    assert any(line.startswith("reason: alerting rules") for line in expired)
    assert bare == ["compat shim legacy_requests_total", "expires: 2030-12-31"]
    # Judged against --today: the day itself is not past it (as check's expired-shim rule).
    on_the_day = _comments_above_rules(_rendered_rules(contract, today=date(2024, 3, 18)))[1]
    assert not any("-- EXPIRED on" in line for line in on_the_day)


def test_cli_marks_expired_shims_against_today(write: Any) -> None:
    path = write("shims.yaml", SHIMS_CONTRACT.replace("expires: 2027-01-31", "expires: 2025-01-01"))
    late = run_cli("render", "rules", "-c", str(path), "--today", "2025-01-02")
    early = run_cli("render", "rules", "-c", str(path), "--today", "2023-01-01")
    # The loader tolerates expired shims (as the sidecar does), so the file is still rendered.
    assert late.returncode == early.returncode == 0, late.stderr + early.stderr
    assert "EXPIRED on 2025-01-01 (judged on 2025-01-02)" in late.stdout
    assert "-- EXPIRED on" not in early.stdout


def test_no_shims_render_an_empty_rule_file(promtool: str, tmp_path: Path, write: Any) -> None:
    path = write("plain.yaml", "contract: plain\nversion: 1.0.0\nmetrics:\n  - {name: up_total, type: sum}\n")
    result = run_cli("render", "rules", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {"groups": []}
    assert "# The contract has no compat: shims" in result.stdout
    out = tmp_path / "empty.yaml"
    out.write_text(result.stdout, encoding="utf-8")
    check = promtool_check_rules(promtool, out)
    assert check.returncode == 0, check.stdout + check.stderr


TRICKY = [
    'up{a="x\\ny"}',
    "  leading and trailing spaces  ",
    "tab\there",
    "'single' and \"double\"",
    "# looks like a comment",
    "- looks like a list",
    "{looks: like a map}",
    "key: value",
    "null",
    "true",
    "0o17",
    "1.5e3",
    "multi\nline\n\nwith blank\n",
    "\n  starts with a break and indented\n\n\n",
    "  indented first line\nsecond",
    "trailing spaces  \non a line",
    "last line has no break\n  but an indent",
    "crlf\r\nline",
    "unicode é ✓ \u2028 separator",
    "nel\x85char",
    "line\u2029separator",
    "nul\x00and del\x7f and c1\x9b",
    "bom\ufeffinside",
    "\U0001f600 emoji",
    "bell\x07char",
    "ends with backslash \\",
    "",
]


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_any_string_round_trips_and_never_breaks_the_comments(text: str) -> None:
    shim = Shim(
        record="legacy_total",
        expr=text,
        expires=date(2030, 1, 1),
        labels={"note": text},
        owner=text,
        reason=f"{text}\nsecond: line # {text}",
        unit=text,
    )
    contract = Contract(name=f"c {text}", version="1.0.0", source="c.yaml", compat=(shim,))
    rendered = _rendered_rules(contract, group=text or "g")
    document = yaml.safe_load(rendered)
    (group,) = document["groups"]
    assert group["name"] == (text or "g")
    assert group["rules"] == [{"record": "legacy_total", "expr": text, "labels": {"note": text}}]


@settings(max_examples=500, deadline=None)
@given(st.text(), st.sampled_from([0, 2, 6]))
def test_yaml_building_blocks_round_trip_any_text(text: str, indent: int) -> None:
    """Whatever a contract string holds, comments stay comments and values read back exactly."""
    data = [{"value": text, "map": {text: text}}]
    lines = [
        *yaml_comment(text, indent, first="reason: ", rest="  "),
        *yaml_block(data, indent),
        *yaml_comment(text, indent),
    ]
    assert all(line.lstrip().startswith("#") for line in lines[: len(text.splitlines()) or 1])
    assert yaml.safe_load("\n".join(lines) + "\n") == data


def test_an_object_used_twice_is_written_twice_not_as_a_yaml_alias() -> None:
    shared = ["otlp_grpc"]
    text = "\n".join(yaml_block({"metrics": {"exporters": shared}, "traces": {"exporters": shared}}))
    assert "&" not in text and "*" not in text
    assert yaml.safe_load(text) == {"metrics": {"exporters": ["otlp_grpc"]}, "traces": {"exporters": ["otlp_grpc"]}}


def test_names_prometheus_refuses_are_an_error() -> None:
    shims = (
        Shim(record="http.server.duration", expr="up", expires=date(2030, 1, 1)),
        Shim(record="ok_total", expr="up", expires=date(2030, 1, 1), labels={"bad-label": "x"}),
    )
    contract = Contract(name="c", version="1.0.0", source="c.yaml", compat=shims)
    with pytest.raises(RenderError, match=r"'http.server.duration': record .*'bad-label' is not a Prometheus label"):
        _rendered_rules(contract)


@pytest.mark.parametrize("interval", ["", "1", "5 m", "1m1h", "-1m", "0s", "0m0s"])
def test_bad_interval_is_refused(interval: str) -> None:
    contract = load_contract(ECOMMERCE, today=TODAY).contract
    with pytest.raises(RenderError, match="interval"):
        _rendered_rules(contract, interval=interval)


@pytest.mark.parametrize("interval", ["30s", "1m", "1h30m", "1d", "500ms", "1w"])
def test_good_interval_is_kept(interval: str) -> None:
    contract = load_contract(ECOMMERCE, today=TODAY).contract
    assert yaml.safe_load(_rendered_rules(contract, interval=interval))["groups"][0]["interval"] == interval


def test_empty_group_name_is_refused() -> None:
    contract = load_contract(ECOMMERCE, today=TODAY).contract
    with pytest.raises(RenderError, match="group name"):
        _rendered_rules(contract, group=" ")


# --- render schema -------------------------------------------------------------------------------


def _schema(contract: Contract, url: str | None = None) -> tuple[str, dict[str, Any]]:
    text = otel_schema.render(contract, ArtefactOptions(today=TODAY, schema_url=url))
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return text, document


_SECTIONS = {"all", "resources", "spans", "span_events", "metrics", "logs"}
_TRANSFORMS = {
    "all": {"rename_attributes"},
    "metrics": {"rename_metrics", "rename_attributes", "split"},
}


def _assert_follows_spec(document: dict[str, Any], contract: Contract) -> None:
    """The shape of file format 1.1.0, as far as this renderer writes it (the Go parser is strict)."""
    assert set(document) == {"file_format", "schema_url", "versions"}
    assert document["file_format"] == "1.1.0"
    assert document["schema_url"].rsplit("/", 1)[1] == contract.version
    versions = document["versions"]
    assert contract.version in versions
    assert list(versions) == sorted(versions, key=otel_schema._precedence, reverse=True)  # newest first
    assert next(iter(versions)) == contract.version  # the URL's version is the highest
    for body in versions.values():
        assert set(body) <= _SECTIONS
        for section, content in body.items():
            assert set(content) == {"changes"}
            for change in content["changes"]:
                (kind,) = change
                assert kind in _TRANSFORMS[section]
                if kind == "rename_attributes":
                    allowed = {"attribute_map", "apply_to_metrics"} if section == "metrics" else {"attribute_map"}
                    assert set(change[kind]) <= allowed and "attribute_map" in change[kind]


def test_ecommerce_schema() -> None:
    contract = load_contract(ECOMMERCE, today=TODAY).contract
    text, document = _schema(contract)
    _assert_follows_spec(document, contract)
    assert document["schema_url"] == "https://schemas.invalid/ecommerce/1.4.0"
    assert document["versions"] == {
        "1.4.0": {
            "all": {
                "changes": [
                    {
                        "rename_attributes": {
                            "attribute_map": {"http_status": "http.status_code", "status_code": "http.status_code"}
                        }
                    }
                ]
            }
        },
        "1.0.0": {
            "metrics": {
                "changes": [
                    {
                        "rename_metrics": {
                            "http.server.duration": "http_server_duration_seconds",
                            "http.server.request.count": "http_requests_total",
                        }
                    }
                ]
            }
        },
    }
    # The unit conversion the format cannot express is said on the version that holds the rename.
    note = re.search(r"^  # http\.server\.duration -> .*?(?=^  1\.0\.0:)", text, re.MULTILINE | re.DOTALL)
    assert note is not None, text
    assert "in ms, the metric in s" in note.group()
    assert "cannot convert units" in note.group()


def test_versioned_schema_places_each_rename_under_its_version(write: Any) -> None:
    contract = _lint(write("versioned.yaml", VERSIONED_CONTRACT))
    text, document = _schema(contract)
    _assert_follows_spec(document, contract)
    versions = document["versions"]
    # 1.5.0 (cache_hits_total's since) carries no rename, so it is not listed.
    assert list(versions) == ["2.1.0", "2.0.0", "1.0.0"]
    assert versions["2.1.0"] == {
        "all": {
            "changes": [
                {
                    "rename_attributes": {
                        "attribute_map": {"http_status": "http.status_code", "status_code": "http.status_code"}
                    }
                }
            ]
        },
        # No since: the contract version.
        "metrics": {
            "changes": [
                {"rename_metrics": {"disk.io.time": "disk_io_seconds_total"}},
                {
                    "rename_attributes": {
                        "attribute_map": {"dev": "device"},
                        "apply_to_metrics": ["disk_io_seconds_total"],
                    }
                },
            ]
        },
    }
    assert versions["2.0.0"] == {
        "metrics": {"changes": [{"rename_metrics": {"jobs.processed": "jobs_processed_total"}}]}
    }
    assert versions["1.0.0"] == {
        "metrics": {
            "changes": [
                {
                    "rename_metrics": {
                        "queue.wait.time": "queue_wait_seconds",
                        "queue_wait_time_seconds": "queue_wait_seconds",
                    }
                },
                {
                    "rename_attributes": {
                        "attribute_map": {"phase_name": "phase", "queue": "queue.name"},
                        "apply_to_metrics": ["queue_wait_seconds"],
                    }
                },
            ]
        }
    }
    # Only the alias whose unit differs gets the note; same unit or none needs no conversion.
    assert "queue.wait.time -> queue_wait_seconds: the alias is in ms, the metric in s" in text
    assert "queue_wait_time_seconds ->" not in text
    assert "jobs.processed ->" not in text


def test_empty_contract_still_lists_its_version() -> None:
    contract = Contract(name="bare", version="0.3.0", source="bare.yaml")
    _, document = _schema(contract)
    _assert_follows_spec(document, contract)
    assert document["versions"] == {"0.3.0": {}}


def test_since_that_cannot_be_used_goes_under_the_contract_version(write: Any) -> None:
    text = VERSIONED_CONTRACT.replace("since: 1.0.0", "since: first release").replace("since: 2.0.0", "since: 3.0.0")
    contract = _lint(write("odd.yaml", text))
    rendered, document = _schema(contract)
    _assert_follows_spec(document, contract)
    assert list(document["versions"]) == ["2.1.0"]
    renames = document["versions"]["2.1.0"]["metrics"]["changes"][0]["rename_metrics"]
    assert renames["queue.wait.time"] == "queue_wait_seconds"
    assert renames["jobs.processed"] == "jobs_processed_total"
    flat = " ".join(line.strip("# ") for line in rendered.splitlines() if line.lstrip().startswith("#"))
    assert "queue_wait_seconds: since 'first release' is not a semantic version" in flat
    assert "jobs_processed_total: since 3.0.0 is newer than the contract version" in flat


def test_metric_rename_the_global_one_pre_empts_is_noted(write: Any) -> None:
    text = VERSIONED_CONTRACT.replace("renames: {dev: device}", "renames: {dev: device, http_status: status}")
    rendered, _ = _schema(_lint(write("shadow.yaml", text)))
    flat = " ".join(line.strip("# ") for line in rendered.splitlines() if line.lstrip().startswith("#"))
    assert "disk_io_seconds_total renames http_status to status, the global renames to http.status_code" in flat


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "https://schemas.invalid/versioned/2.1.0"),
        ("https://schemas.example.com/versioned", "https://schemas.example.com/versioned/2.1.0"),
        ("https://schemas.example.com/versioned/", "https://schemas.example.com/versioned/2.1.0"),
        ("https://schemas.example.com/versioned/2.1.0", "https://schemas.example.com/versioned/2.1.0"),
        ("http://schemas.example.com", "http://schemas.example.com/2.1.0"),
    ],
)
def test_schema_url(given: str | None, expected: str) -> None:
    contract = Contract(name="versioned", version="2.1.0", source="v.yaml")
    assert otel_schema.schema_url(contract, given) == expected


@pytest.mark.parametrize(
    "given",
    ["https://schemas.example.com/versioned/2.0.0", "schemas.example.com/x", "ftp://host/x", "https://h/x?v=1"],
)
def test_schema_url_refused(given: str) -> None:
    contract = Contract(name="versioned", version="2.1.0", source="v.yaml")
    with pytest.raises(RenderError, match="schema URL"):
        otel_schema.schema_url(contract, given)


def test_version_precedence_is_semver() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0",
        "1.2.0",
        "1.10.0",
    ]
    assert sorted(reversed(ordered), key=otel_schema._precedence) == ordered


# --- the schema file means what the engine does ----------------------------------------------------


Series = tuple[str, frozenset[str]]


def apply_schema(document: dict[str, Any], series: Iterable[Series]) -> list[Series]:
    """A reference applier of the spec: every version, oldest first; per version 'all' before 'metrics',
    and each section's changes top to bottom."""
    versions = sorted(document["versions"].items(), key=lambda item: otel_schema._precedence(item[0]))
    out = []
    for name, keys in series:
        for _, body in versions:
            for change in body.get("all", {}).get("changes", []):
                keys = frozenset(change["rename_attributes"]["attribute_map"].get(k, k) for k in keys)
            for change in body.get("metrics", {}).get("changes", []):
                if "rename_metrics" in change:
                    name = change["rename_metrics"].get(name, name)
                elif "rename_attributes" in change:
                    spec = change["rename_attributes"]
                    if "apply_to_metrics" not in spec or name in spec["apply_to_metrics"]:
                        keys = frozenset(spec["attribute_map"].get(k, k) for k in keys)
        out.append((name, keys))
    return out


def _engine(contract_path: Path, metrics: list[dict[str, Any]]) -> tuple[list[Series], list[Series]]:
    """(what was sent, what the engine forwards) as (metric name, attribute keys) per data point."""
    request = metrics_request(*metrics)

    def series(message: Any) -> list[Series]:
        out = []
        for metric in all_metrics(message):
            kind = metric.WhichOneof("data")
            for point in getattr(metric, kind).data_points:
                out.append((metric.name, frozenset(kv.key for kv in point.attributes)))
        return out

    outcome = process_metrics(request, load_contract(contract_path, today=TODAY))
    assert outcome.rejected == 0, outcome.findings
    return series(request), series(outcome.request)


def test_schema_applied_to_legacy_names_gives_what_the_engine_gives_ecommerce() -> None:
    method = {"http.method": "GET"}
    sent, forwarded = _engine(
        ECOMMERCE,
        [
            histogram(
                "http.server.duration",
                [
                    hpoint({**method, "http_status": "503"}, [100.0], [1, 0], 50.0),
                    hpoint({**method, "status_code": "200", "http.route": "/cart"}, [100.0], [1, 0], 50.0),
                ],
                unit="ms",
            ),
            counter("http.server.request.count", [({**method, "http_status": "200"}, 3.0)]),
            counter("http_requests_total", [({**method, "status_code": "404"}, 1.0)]),
            gauge("checkout_cart_items", [({"http_status": "200", "cart": "x"}, 3.0)]),
        ],
    )
    _, document = _schema(load_contract(ECOMMERCE, today=TODAY).contract)
    assert apply_schema(document, sent) == forwarded
    assert {name for name, _ in forwarded} == {
        "http_server_duration_seconds",
        "http_requests_total",
        "checkout_cart_items",
    }


def test_schema_applied_to_legacy_names_gives_what_the_engine_gives_versioned(write: Any) -> None:
    path = write("versioned.yaml", VERSIONED_CONTRACT)
    sent, forwarded = _engine(
        path,
        [
            histogram(
                "queue.wait.time",
                [hpoint({"phase_name": "acquire", "queue": "q1", "http_status": "500"}, [1.0], [1, 0], 0.5)],
                unit="ms",
            ),
            histogram("queue_wait_time_seconds", [hpoint({"queue": "q2", "dev": "sda"}, [1.0], [1, 0], 0.5)]),
            histogram("queue_wait_seconds", [hpoint({"phase_name": "release"}, [1.0], [1, 0], 0.5)]),
            counter("jobs.processed", [({"status_code": "1", "phase_name": "x"}, 2.0)], unit="{job}"),
            counter("disk.io.time", [({"dev": "sda", "queue": "q"}, 2.0)], unit="s"),
            counter("disk_io_seconds_total", [({"dev": "sdb"}, 2.0)], unit="s"),
            gauge("unknown_gauge", [({"http_status": "200", "dev": "sda"}, 1.0)]),
        ],
    )
    _, document = _schema(_lint(path))
    assert apply_schema(document, sent) == forwarded
    # The test is not vacuous: names and keys did change.
    assert sent != forwarded
    assert ("queue_wait_seconds", frozenset({"phase", "queue.name", "http.status_code"})) in forwarded


# --- the command line ----------------------------------------------------------------------------


def test_cli_writes_schema_to_output(tmp_path: Path) -> None:
    out = tmp_path / "schema.yaml"
    result = run_cli(
        "render",
        "schema",
        "-c",
        str(ECOMMERCE),
        "--schema-url",
        "https://schemas.example.com/ecommerce",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"wrote schema of ecommerce@1.4.0 to {out}" in result.stderr
    document = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert document["schema_url"] == "https://schemas.example.com/ecommerce/1.4.0"


def test_cli_stdout_is_the_rendered_text() -> None:
    result = run_cli("render", "schema", "-c", str(ECOMMERCE))
    assert result.returncode == 0, result.stderr
    assert result.stdout == otel_schema.render(load_contract(ECOMMERCE, today=TODAY).contract, OPTIONS)
    assert result.stderr == ""


def test_cli_missing_contract_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = run_cli("render", "rules", "-c", str(missing))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "nope.yaml" in result.stderr and "cannot read contract" in result.stderr


def test_cli_invalid_contract_names_file_and_line(write: Any) -> None:
    path = write("bad.yaml", "contract: bad\nversion: 1.0.0\nmetrics:\n  - name: a_total\n    type: counter\n")
    result = run_cli("render", "schema", "-c", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert re.search(r"bad\.yaml:5:\d+: error\[contract-schema\]", result.stderr), result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["render", "grafana", "-c", str(ECOMMERCE)], "invalid choice: 'grafana'"),
        (["render", "rules"], "--contract"),
        (["render", "schema", "-c", str(ECOMMERCE), "--group", "x"], "--group does not apply to render schema"),
        (["render", "rules", "-c", str(ECOMMERCE), "--schema-url", "https://x/y"], "--schema-url does not apply"),
        (["render", "rules", "-c", str(ECOMMERCE), "--interval", "5 minutes"], "is not a Prometheus duration"),
        (["render", "schema", "-c", str(ECOMMERCE), "--schema-url", "https://x/e/1.3.0"], "ends in version 1.3.0"),
        (["render", "rules", "-c", str(ECOMMERCE), "--today", "tomorrow"], "expected a date YYYY-MM-DD"),
        (["render", "rules", "-c", str(ECOMMERCE), "-o", str(REPO / "no" / "such" / "dir" / "x.yaml")], "cannot write"),
    ],
)
def test_cli_usage_errors(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_cli_help_explains_each_artefact() -> None:
    result = run_cli("render", "--help")
    assert result.returncode == 0
    flat = " ".join(result.stdout.split())
    for name in ARTEFACTS:
        assert f"{name}: " in flat
    assert "promtool check rules" in flat
    assert "schema processor" in flat
    assert "https://schemas.invalid/<contract name>/<version>" in flat
    top = run_cli("--help")
    assert "render" in top.stdout
