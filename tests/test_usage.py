"""otel-contract usage: dashboards and rule files -> which queries read each contract metric; archive
candidates from git history; --write."""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from otel_contract.loading import lint_contract
from otel_contract.usage import ArchiveWindow, analyse, scan_files, substitute
from otel_contract.usage.model import Scan, SourceKind
from otel_contract.usage.report import load_schema
from tests.ceph_fixtures import CephFixtures, ceph_fixtures_fixture  # noqa: F401 - the fixture
from tests.conftest import REPO, git, run_cli

DATA = REPO / "tests" / "data" / "usage"
HANDMADE = DATA / "handmade"
RULES = DATA / "rules"

# The series each metric of ceph.yaml is read under (a summary: its _sum and _count too), written out
# here rather than taken from the code under test.
CEPH_SERIES = {
    "ceph_pool_rd": ("ceph_pool_rd",),
    "ceph_osd_stat_bytes": ("ceph_osd_stat_bytes",),
    "ceph_health_detail": ("ceph_health_detail",),
    "ceph_health_status": ("ceph_health_status",),
    "ceph_mds_inodes": ("ceph_mds_inodes",),
    "ceph_osd_op_r_latency": ("ceph_osd_op_r_latency", "ceph_osd_op_r_latency_sum", "ceph_osd_op_r_latency_count"),
    "ceph_osd_weight": ("ceph_osd_weight",),
}


def _mentions(text: str, names: tuple[str, ...]) -> bool:
    """Whether ``text`` names one of ``names`` as a whole word (not a prefix of a longer name)."""
    return any(re.search(rf"(?<![A-Za-z0-9_:]){re.escape(name)}(?![A-Za-z0-9_:])", text) for name in names)


def _usage_json(*args: str, cwd: Path = REPO) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    result = run_cli("usage", "--format", "json", "--today", "2026-11-22", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER).validate(report)
    return report, result


# --- the real Ceph dashboards and alerts --------------------------------------------------------------


def test_ceph_usage_lists_exactly_the_dashboards_and_alerts_that_name_each_metric(ceph_fixtures: CephFixtures) -> None:
    report, result = _usage_json(
        "-c",
        str(DATA / "ceph.yaml"),
        "--dashboards",
        str(ceph_fixtures.dashboards),
        "--rules",
        str(ceph_fixtures.alerts),
    )
    files = sorted(ceph_fixtures.dashboards.glob("*.json"))
    raw = {str(path): path.read_text("utf-8") for path in files}
    titles = {str(path): json.loads(text)["title"] for path, text in raw.items()}
    alerts = [
        rule for group in yaml.safe_load(ceph_fixtures.alerts.read_text("utf-8"))["groups"] for rule in group["rules"]
    ]
    metrics = {metric["name"]: metric for metric in report["metrics"]}
    assert set(metrics) == set(CEPH_SERIES)
    for name, series in CEPH_SERIES.items():
        expected_dashboards = {(titles[file], file) for file, text in raw.items() if _mentions(text, series)}
        expected_rules = {rule["alert"] for rule in alerts if _mentions(rule["expr"], series)}
        found_dashboards = {(d["title"], d["file"]) for d in metrics[name]["dashboards"]}
        found_rules = {use["rule"] for use in metrics[name]["uses"] if use["kind"] == "rule"}
        assert found_dashboards == expected_dashboards, name
        assert found_rules == expected_rules, name
    # The contract covers every kind of use the issue asks for; each set is non-trivial.
    assert len(metrics["ceph_pool_rd"]["dashboards"]) >= 2 and not metrics["ceph_pool_rd"]["rules"]
    assert len(metrics["ceph_osd_stat_bytes"]["dashboards"]) >= 2
    assert metrics["ceph_health_detail"]["dashboards"] == [] and metrics["ceph_health_detail"]["rules"]
    assert {use["kind"] for use in metrics["ceph_mds_inodes"]["uses"]} == {"variable"}
    latency_series = {use["series"] for use in metrics["ceph_osd_op_r_latency"]["uses"]}
    assert latency_series <= set(CEPH_SERIES["ceph_osd_op_r_latency"])
    assert metrics["ceph_osd_weight"]["used"] is False and metrics["ceph_osd_weight"]["uses"] == []
    summary = report["summary"]
    assert summary["dashboards"] == len(files) and summary["rule_files"] == 1
    assert summary["rules"] == len(alerts)
    assert summary["unparsed"] == len(report["unparsed"]) == 0, report["unparsed"]
    print(f"ceph: {summary}")  # the counts, for the record (pytest -s)
    assert f"{len(files)} dashboards" in result.stderr and "0 unparsed" in result.stderr


def test_ceph_text_report_names_dashboards_panels_and_rows(ceph_fixtures: CephFixtures) -> None:
    result = run_cli(
        "usage", "-c", str(DATA / "ceph.yaml"), "--dashboards", str(ceph_fixtures.dashboards), "--today", "2026-11-22"
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"ceph_osd_op_r_latency \(summary, stable, since 1\.0\.0\): used by \d+ dashboards", result.stdout)
    assert "dashboard 'OSD Overview'" in result.stdout
    assert "row 'OSD Performance', panel '$osd Latency' [A]" in result.stdout  # a panel below an open row


# --- formats the Ceph set lacks ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handmade() -> Scan:
    return scan_files([str(HANDMADE)], [str(RULES)])


def _uses(scan: Scan, metric_series: str) -> list[tuple[str, str | None, str | None, str | None]]:
    return [
        (query.source.kind.value, query.source.row, query.source.panel or query.source.variable, query.source.ref_id)
        for query in scan.queries
        if any(selector.matches(metric_series) for selector in query.selectors)
    ]


def test_api_export_wrapper_open_and_collapsed_rows(handmade: Scan) -> None:
    by_file = {query.source.file: query.source.dashboard for query in handmade.queries}
    assert by_file[str(HANDMADE / "api-export.json")] == "Shop"  # unwrapped from {"dashboard": ...}
    assert ("panel", None, "Orders", "A") in _uses(handmade, "shop_orders_total")  # [$__rate_interval]
    # After an open row; [$window].
    assert ("panel", "Latency", "p90", "A") in _uses(handmade, "shop_latency_seconds_bucket")
    # Inside a collapsed row; topk($n), ${cart:regex} and offset $shift all replaced.
    assert ("panel", "Carts", "Biggest carts", "C") in _uses(handmade, "shop_cart_items")


def test_legacy_rows_and_bracket_variables(handmade: Scan) -> None:
    assert _uses(handmade, "payments_total_legacy") == [("panel", "Old row", "Payments", "A")]  # [[[window]]]
    assert ("panel", "Old row", "Payments", "B") in _uses(handmade, "shop_queue_depth")  # "[[queue]]" in a label


def test_templating_queries(handmade: Scan) -> None:
    variables = {q.source.variable: q for q in handmade.queries if q.source.kind is SourceKind.VARIABLE}
    # label_values(instance) reads no metric; interval and custom variables are not queries.
    assert set(variables) == {"job", "cart", "queue"}
    assert variables["job"].selectors[0].matches("shop_build_info")  # {"query": "label_values(metric, label)"}
    assert variables["cart"].selectors[0].matches("shop_cart_items")  # query_result(...) with $__range
    queue = variables["queue"].selectors[0]  # metrics(regex): Grafana searches names, unanchored
    assert queue.matches("shop_queue_depth") and queue.matches("my_shop_queue_x") and not queue.matches("shop_orders")


def test_annotations_and_rules(handmade: Scan) -> None:
    assert _uses(handmade, "shop_deploys_total") == [("annotation", None, None, None)]
    rules = {(q.source.rule_type, q.source.rule, q.source.group) for q in handmade.queries if q.source.rule}
    assert rules == {("record", "shop:orders:rate5m", "shop"), ("alert", "ShopLatencyHigh", "shop")}
    assert [d.record for d in handmade.derivations] == ["shop:orders:rate5m"]


def test_unparsed_queries_are_reported_with_where_and_why(handmade: Scan) -> None:
    unparsed = {(u.source.panel, u.source.ref_id): u.reason for u in handmade.unparsed}
    assert set(unparsed) == {("Broken", "D"), ("Broken", "E")}
    assert "$suffix is part of a metric or label name" in unparsed[("Broken", "D")]
    assert "parenthesis" in unparsed[("Broken", "E")]
    assert handmade.skipped == (
        f"{HANDMADE / 'package.json'}: not a Grafana dashboard (no panels, rows or templating)",
    )
    assert handmade.dashboards == (str(HANDMADE / "api-export.json"), str(HANDMADE / "legacy-rows.json"))
    assert handmade.panels == 5


@pytest.mark.parametrize(
    ("template", "promql"),
    [
        ('rate(x{job=~"$job"}[$__rate_interval])', 'rate(x{job=~".*"}[5m])'),
        ("rate(x[${window}])", "rate(x[5m])"),
        ("rate(x[[[window]]])", "rate(x[5m])"),
        ("rate(x[${days}d])", "rate(x[1d])"),
        ("max_over_time(x[1h:$__interval])", "max_over_time(x[1h:5m])"),
        ("x offset $shift", "x offset 5m"),
        ("topk($n, x)", "topk(1, x)"),
        ('label_replace(x, "a", "$1", "b", "(.*)")', 'label_replace(x, "a", "$1", "b", "(.*)")'),  # $1 is a group
        ('x{a="${job:pipe}", b="$unknown"}', 'x{a=".*", b="$unknown"}'),  # only known variables in strings
    ],
)
def test_substitute(template: str, promql: str) -> None:
    assert substitute(template, frozenset({"job", "window"})) == promql


@pytest.mark.parametrize("template", ["ceph_$name", "${prefix}_total", "x:$rule"])
def test_substitute_refuses_a_variable_inside_a_name(template: str) -> None:
    with pytest.raises(ValueError, match="part of a metric or label name"):
        substitute(template)


def test_uses_through_recording_rules_and_compat_shims(handmade: Scan) -> None:
    result = lint_contract(DATA / "shop.yaml", today=date(2026, 11, 22))
    assert result.contract is not None
    report = analyse(result.contract, handmade, {}, today=date(2026, 11, 22))
    metrics = {m.name: m for m in report.metrics}
    vias = {(u.source.panel, u.series, u.via) for u in metrics["shop_orders_total"].uses}
    assert ("p90", "shop:orders:rate5m", (f"recording rule shop:orders:rate5m ({RULES / 'shop.rules.yml'})",)) in vias
    assert [(u.series, u.via) for u in metrics["shop_payment_total"].uses] == [
        ("payments_total_legacy", ("compat shim payments_total_legacy",))
    ]
    assert [u.series for u in metrics["shop_latency_seconds"].uses] == ["shop_latency_seconds_bucket"] * 2


# --- archive candidates from git history --------------------------------------------------------------


@pytest.fixture
def shop_repo(tmp_path: Path) -> Path:
    """shop.yaml (+ shop-base.yaml) in a git repository: version 1.0.0 on 2026-01-10, 1.1.0 on 2026-10-01."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    text = (DATA / "shop.yaml").read_text("utf-8")
    (repo / "shop.yaml").write_text(text.replace("version: 1.1.0", "version: 1.0.0"), "utf-8")
    shutil.copy(DATA / "shop-base.yaml", repo / "shop-base.yaml")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "shop 1.0.0", when="2026-01-10")
    (repo / "shop.yaml").write_text(text, "utf-8")
    git(repo, "commit", "-q", "-am", "shop 1.1.0", when="2026-10-01")
    return repo


def _shop_usage(repo: Path, *args: str) -> dict[str, dict[str, Any]]:
    report, _ = _usage_json("-c", str(repo / "shop.yaml"), "--dashboards", str(HANDMADE), "--rules", str(RULES), *args)
    return {metric["name"]: metric for metric in report["metrics"]}


UNUSED_SINCE_1_0 = {"shop_legacy_total", "shop_coupon_ratio", "shop_wishlist_items", "shop_base_heartbeat"}


def test_archive_candidates_are_unused_metrics_older_than_the_window(shop_repo: Path) -> None:
    metrics = _shop_usage(shop_repo)
    assert {name for name, m in metrics.items() if m["candidate"]} == UNUSED_SINCE_1_0
    assert metrics["shop_legacy_total"]["introduced"] == "2026-01-10"
    assert metrics["shop_base_heartbeat"]["introduced"] == "2026-01-10"  # dated by its own file, an include
    young = metrics["shop_new_feature_total"]
    assert young["introduced"] == "2026-10-01" and not young["candidate"]
    assert "younger than 6mo until 2027-04-01" in young["reason"]
    assert "no since" in metrics["shop_undated_total"]["reason"] and not metrics["shop_undated_total"]["candidate"]
    assert metrics["shop_gone_total"]["reason"] == "already archived" and not metrics["shop_gone_total"]["candidate"]


def test_archive_window_and_today_move_the_boundary(shop_repo: Path) -> None:
    assert not any(m["candidate"] for m in _shop_usage(shop_repo, "--archive-after", "400d").values())
    later = _shop_usage(shop_repo, "--today", "2027-04-01")  # exactly six months after 2026-10-01
    assert {name for name, m in later.items() if m["candidate"]} == UNUSED_SINCE_1_0 | {"shop_new_feature_total"}
    assert ArchiveWindow.parse("6mo").after(date(2026, 8, 31)) == date(2027, 2, 28)
    assert ArchiveWindow.parse("180d").after(date(2026, 1, 1)) == date(2026, 6, 30)


def test_without_git_history_nothing_is_a_candidate_and_the_report_says_why(tmp_path: Path) -> None:
    shutil.copy(DATA / "shop.yaml", tmp_path / "shop.yaml")
    shutil.copy(DATA / "shop-base.yaml", tmp_path / "shop-base.yaml")
    metrics = _shop_usage(tmp_path)
    assert not any(m["candidate"] for m in metrics.values())
    assert "not in a git work tree" in metrics["shop_legacy_total"]["reason"]


def test_fail_on_candidates_exits_1(shop_repo: Path) -> None:
    args = ("usage", "-c", str(shop_repo / "shop.yaml"), "--dashboards", str(HANDMADE), "--today", "2026-11-22")
    assert run_cli(*args).returncode == 0
    result = run_cli(*args, "--fail-on-candidates")
    assert result.returncode == 1, result.stderr
    assert "4 archive candidates" in result.stderr


# --- --write ------------------------------------------------------------------------------------------------


def _changed(old: str, new: str) -> list[tuple[str, str]]:
    """(tag, line) of every line that differs."""
    diff = difflib.ndiff(old.splitlines(), new.splitlines())
    return [(line[0], line[2:]) for line in diff if line[:1] in "+-"]


def test_write_archives_candidates_keeping_comments_and_bumps_minor(shop_repo: Path) -> None:
    shop, base = shop_repo / "shop.yaml", shop_repo / "shop-base.yaml"
    old_shop, old_base = shop.read_text("utf-8"), base.read_text("utf-8")
    result = run_cli(
        "usage", "-c", str(shop), "--dashboards", str(HANDMADE), "--rules", str(RULES), "--today", "2026-11-22",
        "--write", "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)["written"]
    assert set(written["archived"]) == UNUSED_SINCE_1_0
    assert written["old_version"] == "1.1.0" and written["new_version"] == "1.2.0" and written["bump"] == "minor"
    assert sorted(_changed(old_shop, shop.read_text("utf-8"))) == sorted(
        [
            ("-", "version: 1.1.0   # bumped by hand until now"),
            ("+", "version: 1.2.0   # bumped by hand until now"),
            ("-", "    stability: stable   # stable, but nobody looks at it any more"),
            # ruamel keeps an end-of-line comment in its column, so a longer value eats the padding.
            ("+", "    stability: archived # stable, but nobody looks at it any more"),
            ("-", '    stability: "deprecated"'),
            ("+", '    stability: "archived"'),  # the quoting kept
            ("-", "  - {name: shop_wishlist_items, type: gauge, unit: '{item}', since: 1.0.0}"),
            ("+", "  - {name: shop_wishlist_items, type: gauge, unit: '{item}', stability: archived, since: 1.0.0}"),
        ]
    )
    assert _changed(old_base, base.read_text("utf-8")) == [
        ("-", "    stability: stable"),
        ("+", "    stability: archived"),
    ]  # the include that defines it, not the root
    check = run_cli("check", str(shop), "--today", "2026-11-22")
    assert check.returncode == 0, check.stdout + check.stderr
    again = _shop_usage(shop_repo)
    assert not any(m["candidate"] for m in again.values())
    assert {name for name, m in again.items() if m["stability"] == "archived"} == UNUSED_SINCE_1_0 | {"shop_gone_total"}


def test_write_bumps_major_when_the_policy_rejects_deprecated_metrics(shop_repo: Path) -> None:
    shop = shop_repo / "shop.yaml"
    shop.write_text(shop.read_text("utf-8") + "\npolicy:\n  deprecated-metric: reject\n", "utf-8")
    git(shop_repo, "commit", "-q", "-am", "policy", when="2026-10-02")
    result = run_cli(
        "usage", "-c", str(shop), "--dashboards", str(HANDMADE), "--today", "2026-11-22", "--write", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)["written"]
    assert (written["new_version"], written["bump"]) == ("2.0.0", "major")
    assert "version: 2.0.0   # bumped by hand until now" in shop.read_text("utf-8")
    assert lint_contract(shop, today=date(2026, 11, 22)).has_errors() is False


def test_write_without_candidates_changes_nothing(tmp_path: Path) -> None:
    shutil.copy(DATA / "shop.yaml", tmp_path / "shop.yaml")
    shutil.copy(DATA / "shop-base.yaml", tmp_path / "shop-base.yaml")
    before = (tmp_path / "shop.yaml").read_bytes()
    result = run_cli("usage", "-c", str(tmp_path / "shop.yaml"), "--dashboards", str(HANDMADE), "--write")
    assert result.returncode == 0, result.stderr
    assert "wrote nothing: no archive candidates" in result.stdout
    assert (tmp_path / "shop.yaml").read_bytes() == before


# --- reports and usage errors -------------------------------------------------------------------------------


def test_markdown_report_has_one_row_per_metric() -> None:
    result = run_cli(
        "usage",
        "-c",
        str(DATA / "shop.yaml"),
        "--dashboards",
        str(HANDMADE),
        "--rules",
        str(RULES),
        "--format",
        "markdown",
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert len(rows) == 14
    orders = "| `shop_orders_total` | stable | dashboard Shop<br>record shop:orders:rate5m"
    assert any(row.startswith(orders) for row in rows)
    assert "2 unparsed queries" in result.stdout


def test_missing_directory_is_a_usage_error() -> None:
    result = run_cli("usage", "-c", str(DATA / "shop.yaml"), "--dashboards", "no/such/dir")
    assert result.returncode == 2
    assert "--dashboards no/such/dir: no such file or directory" in result.stderr


def test_broken_json_is_a_usage_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text('{"title": "ok", "panels": []}', "utf-8")
    (tmp_path / "broken.json").write_text('{\n  "title": "x",\n  "panels": [\n}\n', "utf-8")
    result = run_cli("usage", "-c", str(DATA / "shop.yaml"), "--dashboards", str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path / 'broken.json'}:4:1: not JSON" in result.stderr


def test_broken_rule_file_is_a_usage_error_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text("groups:\n  - name: a\n    rules: [\n", "utf-8")
    result = run_cli("usage", "-c", str(DATA / "shop.yaml"), "--rules", str(tmp_path))
    assert result.returncode == 2
    assert f"{tmp_path / 'r.yml'}:4:1: not YAML" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dashboards", str(HANDMADE), "--archive-after", "6m"), "expected a window like 180d"),
        ((), "needs --dashboards DIR or --rules DIR"),
    ],
)
def test_bad_options_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    result = run_cli("usage", "-c", str(DATA / "shop.yaml"), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_unreadable_contract_is_a_usage_error() -> None:
    result = run_cli("usage", "-c", "no/such/contract.yaml", "--dashboards", str(HANDMADE))
    assert result.returncode == 2
    assert "no/such/contract.yaml" in result.stderr


# --- series names in every translation strategy (issue 17, bug 2) -------------------------------------------


def test_a_dashboard_on_the_translated_counter_name_uses_the_metric(tmp_path: Path) -> None:
    """hpa_app_consume_count is a counter: render adapter/hpa query it as hpa_app_consume_count_total
    (the default translation, as the Collector and prometheus-client expose it), so a dashboard that does
    uses it; a dashboard on the classic name hpa_app_produce_count uses that one."""
    adapter = run_cli("render", "adapter", "-c", str(REPO / "contracts" / "hpa-app.yaml"))
    assert adapter.returncode == 0, adapter.stderr
    assert "hpa_app_consume_count_total" in adapter.stdout
    dashboard = {
        "title": "Queue",
        "panels": [
            {"title": "Consumed", "targets": [{"refId": "A", "expr": "sum(rate(hpa_app_consume_count_total[5m]))"}]},
            {"title": "Produced", "targets": [{"refId": "A", "expr": "sum(rate(hpa_app_produce_count[5m]))"}]},
        ],
    }
    (tmp_path / "queue.json").write_text(json.dumps(dashboard), "utf-8")
    report, _ = _usage_json("-c", str(REPO / "contracts" / "hpa-app.yaml"), "--dashboards", str(tmp_path))
    uses = {metric["name"]: [use["series"] for use in metric["uses"]] for metric in report["metrics"]}
    assert uses["hpa_app_consume_count"] == ["hpa_app_consume_count_total"]
    assert uses["hpa_app_produce_count"] == ["hpa_app_produce_count"]
    assert uses["hpa_app_queue_length"] == []
