"""``include:`` stays in the top-level contract's directory tree, and a file that is not a contract is
named without its contents: a contract from a pull request must not read or echo the CI runner's files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_contract import ContractError, lint_contract, rules
from otel_contract.contract.files import resolve
from otel_contract.server.config import load_config
from tests.conftest import TODAY, git, run_cli
from tests.sidecar_harness import config_for, running

SECRET = "db_password: hunter2\napi_token: s3cr3t\n"
FRAGMENT = "contract: base\nversion: 1.0.0\nowners: [platform]\n"


def _relative(tmp_path: Path) -> str:
    return "../outside.yaml"


def _absolute(tmp_path: Path) -> str:
    return str(tmp_path / "outside.yaml")


def _symlink(tmp_path: Path) -> str:
    os.symlink(tmp_path / "outside.yaml", tmp_path / "repo" / "link.yaml")
    return "link.yaml"


WAYS_OUT: dict[str, Callable[[Path], str]] = {"relative": _relative, "absolute": _absolute, "symlink": _symlink}


def _contract_including(tmp_path: Path, way_out: Callable[[Path], str], outside: str = FRAGMENT) -> tuple[Path, str]:
    (tmp_path / "repo").mkdir()
    (tmp_path / "outside.yaml").write_text(outside, "utf-8")
    entry = way_out(tmp_path)
    contract = tmp_path / "repo" / "c.yaml"
    contract.write_text(f"contract: c\nversion: 1.0.0\ninclude: ['{entry}']\n", "utf-8")
    return contract, entry


@pytest.mark.parametrize("way_out", WAYS_OUT.values(), ids=WAYS_OUT.keys())
def test_check_refuses_an_include_outside_the_contract_directory(
    tmp_path: Path, way_out: Callable[[Path], str]
) -> None:
    contract, entry = _contract_including(tmp_path, way_out, outside=SECRET)
    result = run_cli("check", "c.yaml", cwd=contract.parent)
    assert result.returncode == 1, result.stderr
    [line] = result.stdout.strip().splitlines()
    assert line.startswith("c.yaml:3:11: error[contract-include] include[0]: ")
    assert f"included file {entry!r} " in line and "--allow-include-outside" in line
    assert "hunter2" not in result.stdout + result.stderr and "db_password" not in result.stdout + result.stderr


@pytest.mark.parametrize("way_out", WAYS_OUT.values(), ids=WAYS_OUT.keys())
def test_allow_include_outside_lets_check_read_it(tmp_path: Path, way_out: Callable[[Path], str]) -> None:
    contract, _ = _contract_including(tmp_path, way_out)
    result = run_cli("check", "c.yaml", "--allow-include-outside", "--today", TODAY.isoformat(), cwd=contract.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    merged = lint_contract(contract, today=TODAY, allow_include_outside=True).contract
    assert merged is not None and merged.owners == ("platform",)


def test_a_refused_include_does_not_tell_whether_the_file_exists(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    contract = tmp_path / "repo" / "c.yaml"
    contract.write_text("contract: c\nversion: 1.0.0\ninclude: [/etc/passwd, /no/such/file.yaml]\n", "utf-8")
    first, second = lint_contract(contract).findings
    assert first.rule is second.rule is rules.CONTRACT_INCLUDE
    assert "is outside" in first.message and "is outside" in second.message
    assert "does not exist" not in second.message


@pytest.mark.parametrize(
    "command",
    [
        ("validate", "-c", "c.yaml", "capture.json"),
        ("render", "rules", "-c", "c.yaml"),
        ("usage", "-c", "c.yaml", "--rules", "."),
    ],
    ids=lambda command: command[0],
)
def test_commands_that_load_a_contract_refuse_an_outside_include_with_exit_2(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    contract, _ = _contract_including(tmp_path, _relative)
    result = run_cli(*command, cwd=contract.parent)
    assert result.returncode == 2, result.stderr
    assert "c.yaml:3:11: error[contract-include]" in result.stderr and "--allow-include-outside" in result.stderr
    allowed = run_cli(*command, "--allow-include-outside", cwd=contract.parent)
    assert "contract-include" not in allowed.stderr


def test_diff_reads_an_outside_include_only_when_allowed(tmp_path: Path) -> None:
    contract, _ = _contract_including(tmp_path, _relative)
    (contract.parent / "old.yaml").write_text("contract: c\nversion: 1.0.0\n", "utf-8")
    refused = run_cli("diff", "old.yaml", "c.yaml", cwd=contract.parent)
    assert "c.yaml has 1 error" in refused.stderr
    assert "owners" not in refused.stdout
    allowed = run_cli("diff", "old.yaml", "c.yaml", "--allow-include-outside", cwd=contract.parent)
    assert "has 1 error" not in allowed.stderr and "owners" in allowed.stdout


def test_includes_anywhere_below_the_contract_directory_still_work(write) -> None:  # type: ignore[no-untyped-def]
    write("shared/common.yaml", "contract: common\nversion: 1.0.0\nowners: [sre]\n")
    write("teams/base.yaml", "contract: base\nversion: 1.0.0\ninclude: [../shared/common.yaml]\nowners: [team]\n")
    top = write("top.yaml", "contract: top\nversion: 1.0.0\ninclude: [teams/base.yaml]\n")
    result = lint_contract(top, today=TODAY)
    assert result.findings == ()
    assert result.contract is not None and result.contract.owners == ("sre", "team")


def test_a_nested_include_may_not_leave_the_top_level_directory(write) -> None:  # type: ignore[no-untyped-def]
    write("outside.yaml", FRAGMENT)
    write("repo/teams/base.yaml", "contract: base\nversion: 1.0.0\ninclude: [../../outside.yaml]\n")
    top = write("repo/top.yaml", "contract: top\nversion: 1.0.0\ninclude: [teams/base.yaml]\n")
    [finding] = lint_contract(top).findings
    assert finding.rule is rules.CONTRACT_INCLUDE and "is outside" in finding.message
    assert finding.location is not None and finding.location.file.endswith("teams/base.yaml")


def test_a_file_that_is_not_a_contract_is_named_without_its_contents(write) -> None:  # type: ignore[no-untyped-def]
    write("secrets.yaml", SECRET + "db_password: again\n")
    top = write("top.yaml", "contract: top\nversion: 1.0.0\ninclude: [secrets.yaml]\n")
    [finding] = lint_contract(top).findings
    assert finding.rule is rules.CONTRACT_SCHEMA
    assert "not a contract file: it has no 'contract' key" in finding.message
    assert finding.location is not None and finding.location.file.endswith("secrets.yaml")
    for word in ("db_password", "api_token", "hunter2", "s3cr3t"):
        assert word not in str(finding)


def test_git_sources_confine_includes_to_the_contract_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "contracts").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "outside.yaml").write_text(FRAGMENT, "utf-8")
    (repo / "contracts" / "c.yaml").write_text("contract: c\nversion: 1.0.0\ninclude: [../outside.yaml]\n", "utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "contract")
    monkeypatch.chdir(repo)
    files, path = resolve("git:HEAD:contracts/c.yaml")
    [finding] = lint_contract(path, files=files).findings
    assert finding.rule is rules.CONTRACT_INCLUDE and "is outside" in finding.message
    assert str(finding.location).startswith("git:HEAD:contracts/c.yaml:3:")
    allowed = lint_contract(path, files=files, allow_include_outside=True, today=TODAY)
    assert allowed.findings == () and allowed.contract is not None and allowed.contract.owners == ("platform",)


def test_the_sidecar_refuses_an_outside_include_unless_the_pipeline_config_allows_it(tmp_path: Path) -> None:
    contract, _ = _contract_including(tmp_path, _relative)
    with pytest.raises(ContractError, match="is outside"), running(config_for(contract, "127.0.0.1:9")):
        pass
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        f"contract: {{path: {contract}, allow_include_outside: true}}\nexporter: {{endpoint: '127.0.0.1:9'}}\n", "utf-8"
    )
    assert load_config(pipeline).allow_include_outside
    with running(config_for(contract, "127.0.0.1:9", allow_include_outside=True)) as sidecar:
        assert sidecar.processor is not None


def test_serve_refuses_an_outside_include_with_exit_2(tmp_path: Path) -> None:
    contract, _ = _contract_including(tmp_path, _relative)
    result = run_cli(
        "serve",
        "--contract",
        "c.yaml",
        "--console",
        "--endpoint",
        "127.0.0.1:0",
        "--http-endpoint",
        "off",
        "--prometheus",
        "off",
        cwd=contract.parent,
    )
    assert result.returncode == 2
    assert "contract-include" in result.stderr and "--allow-include-outside" in result.stderr
