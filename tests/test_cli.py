"""The command line, run as a subprocess the way a user runs it: every exit code, every format."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BROKEN, CONTRACTS, EXAMPLES, REPO, run_cli

EXAMPLE_ARGS = [str(p.relative_to(REPO)) for p in EXAMPLES]


def test_check_examples_exits_0() -> None:
    result = run_cli("check", *EXAMPLE_ARGS, "--today", "2026-11-22")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "no findings in 3 contracts" in result.stderr


def test_console_script_is_installed() -> None:
    script = shutil.which("otel-contract", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run(
        [script, "check", *EXAMPLE_ARGS, "--today", "2026-11-22"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_findings_exit_1_in_compiler_style() -> None:
    result = run_cli("check", "tests/contracts/broken/metric-name.yaml")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tests/contracts/broken/metric-name.yaml:10:11: error[metric-name] metrics[0].name: ")
    assert len(lines) == 2
    assert "2 errors" in result.stderr


def test_expired_shim_fails_and_passes_with_an_earlier_today() -> None:
    path = "tests/contracts/broken/expired-shim.yaml"
    late = run_cli("check", path, "--today", "2024-03-19")
    assert late.returncode == 1
    assert "error[expired-shim] compat[0].expires" in late.stdout
    assert run_cli("check", path, "--today", "2024-03-18").returncode == 0


def test_example_shims_expire_in_the_future_of_their_own_date() -> None:
    result = run_cli("check", "contracts/ecommerce.yaml", "--today", "2099-01-01")
    assert result.returncode == 1 and "expired-shim" in result.stdout


@pytest.mark.parametrize(("fail_on", "code"), [("error", 0), ("warning", 1), ("info", 1), ("none", 0)])
def test_fail_on_threshold(fail_on: str, code: int) -> None:
    result = run_cli("check", "tests/contracts/broken/rfc-field.yaml", "--fail-on", fail_on)
    assert result.returncode == code
    assert result.stdout.count("warning[rfc-field]") == 2


def test_fail_on_none_never_fails_on_errors() -> None:
    assert run_cli("check", "tests/contracts/broken/duplicate-metric.yaml", "--fail-on", "none").returncode == 0


def test_json_report_has_the_stable_keys() -> None:
    result = run_cli("check", "tests/contracts/broken/invalid-budget.yaml", "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert set(report) == {"contract", "summary", "findings"}
    assert report["contract"] == {
        "name": "shop",
        "version": "1.0.0",
        "source": "tests/contracts/broken/invalid-budget.yaml",
    }
    assert report["summary"] == {
        "data_points": 0,
        "findings": {"error": 2, "warning": 0, "info": 0},
        "rejected_data_points": 0,
        "baselined": 0,
    }
    first = report["findings"][0]
    assert {"rule", "level", "metric", "attribute", "count", "message", "source"} <= set(first)
    assert first["rule"] == "invalid-budget" and first["level"] == "error"
    assert first["metric"] == "http_requests_total" and first["count"] == 1
    assert first["source"] == "tests/contracts/broken/invalid-budget.yaml:6:17"


def test_json_with_several_contracts_is_one_report_per_line() -> None:
    result = run_cli("check", *EXAMPLE_ARGS, "--format", "json", "--today", "2026-11-22")
    assert result.returncode == 0
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["contract"]["name"] for r in reports] == ["ecommerce", "hpa-app", "otel-contract-self"]


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = run_cli("check", "tests/contracts/broken/duplicate-metric.yaml", "--format", "json", "-o", str(out))
    assert result.returncode == 1 and result.stdout == ""
    assert json.loads(out.read_text())["findings"][0]["rule"] == "duplicate-metric"


def test_yaml_syntax_error_exits_2_naming_file_and_line() -> None:
    result = run_cli("check", "tests/contracts/broken/yaml-bad-indentation.yaml")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("otel-contract: tests/contracts/broken/yaml-bad-indentation.yaml:5:4: ")
    assert "error[contract-syntax]" in line


def test_missing_file_exits_2_and_other_files_are_still_checked() -> None:
    result = run_cli("check", "no/such/contract.yaml", "tests/contracts/broken/duplicate-metric.yaml")
    assert result.returncode == 2
    expected = "otel-contract: error: no/such/contract.yaml: cannot read contract: No such file or directory"
    assert expected in result.stderr
    assert "error[duplicate-metric]" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("check",), "the following arguments are required: CONTRACT"),
        (("check", "contracts/ecommerce.yaml", "--today", "tomorrow"), "expected a date YYYY-MM-DD"),
        (("check", "contracts/ecommerce.yaml", "--fail-on", "fatal"), "invalid choice: 'fatal'"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    result = run_cli("check", "contracts/ecommerce.yaml", "-o", str(tmp_path / "missing-dir" / "r.txt"))
    assert result.returncode == 2 and "cannot write" in result.stderr


def test_help_explains_exit_codes() -> None:
    result = run_cli("check", "--help")
    assert result.returncode == 0
    assert "--today" in result.stdout and "Exit codes" in result.stdout


def test_a_command_imports_only_its_own_module() -> None:
    # A running sidecar carries only what serve needs; --help still lists every command.
    script = (
        "import sys\nfrom otel_contract.cli import main\n"
        "try:\n    main(['serve', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('otel_contract.cli.', 'otel_contract.inputs',"
        " 'otel_contract.diff'))))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.splitlines()[-1] == "['otel_contract.cli._common', 'otel_contract.cli.serve']"
    listed = run_cli("--help").stdout
    for command in ("check", "validate", "normalize", "serve", "render", "diff", "rfc", "rules", "usage", "schema"):
        assert f"    {command} " in listed or f"    {command}\n" in listed, command


def test_rules_lists_the_catalog() -> None:
    result = run_cli("rules")
    assert result.returncode == 0
    assert any(line.startswith("missing-attribute ") for line in result.stdout.splitlines())
    one = run_cli("rules", "expired-shim")
    assert one.returncode == 0 and one.stdout.startswith("expired-shim")
    assert run_cli("rules", "no-such-rule").returncode == 2


def test_schema_command_prints_the_shipped_schema() -> None:
    result = run_cli("schema")
    assert json.loads(result.stdout)["title"].startswith("otel-contract")
    path = run_cli("schema", "--path").stdout.strip()
    assert Path(path).is_file()


def test_every_corpus_file_exits_nonzero() -> None:
    for path in sorted(BROKEN.glob("*.yaml")):
        code = run_cli("check", str(path), "--today", "2026-11-22", "--fail-on", "warning").returncode
        assert code in (1, 2), path


def test_check_runs_from_another_directory(tmp_path: Path) -> None:
    result = run_cli("check", str(CONTRACTS / "ecommerce.yaml"), "--today", "2026-11-22", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


# Patterns are RE2 syntax: what RE2 compiles is matched in linear time, so a nested quantifier is
# fine; what needs backtracking (backreferences, lookaround) does not compile and is an error.
NOT_RE2 = """\
contract: shop
version: 1.0.0
metrics:
  - name: queue_depth
    type: gauge
    attributes:
      patterns: {queue: '^(a)\\1$', region: '^(?!test-)'}
"""


def test_check_accepts_a_nested_quantifier_now_that_patterns_are_re2(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(NOT_RE2.replace("'^(a)\\1$', region: '^(?!test-)'", "'^(a+)+$'"), "utf-8")
    result = run_cli("check", "c.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout == "" and "no findings" in result.stderr


def test_check_reports_a_pattern_re2_cannot_compile_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(NOT_RE2, "utf-8")
    result = run_cli("check", "c.yaml", cwd=tmp_path)
    assert result.returncode == 1
    backreference, lookahead = result.stdout.splitlines()
    assert backreference.startswith("c.yaml:7:25: error[invalid-pattern] metrics[0].attributes.patterns.queue: ")
    assert "invalid escape sequence: \\1" in backreference and "RE2" in backreference
    assert lookahead.startswith("c.yaml:7:44: error[invalid-pattern] metrics[0].attributes.patterns.region: ")
    assert "(?!" in lookahead


@pytest.mark.parametrize(
    "command",
    [
        ("validate", "-c", "c.yaml", "capture.json"),
        (
            "serve",
            "--contract",
            "c.yaml",
            "--console",
            "--endpoint",
            "127.0.0.1:0",
            "--http-endpoint",
            "off",
            "--prometheus",
            "",
        ),
    ],
    ids=["validate", "serve"],
)
def test_a_contract_whose_pattern_is_not_re2_is_refused_with_exit_2(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "c.yaml").write_text(NOT_RE2, "utf-8")
    (tmp_path / "capture.json").write_text('{"resourceMetrics": []}', "utf-8")
    result = run_cli(*command, cwd=tmp_path)
    assert result.returncode == 2
    assert "c.yaml:7:25" in result.stderr and "invalid-pattern" in result.stderr
