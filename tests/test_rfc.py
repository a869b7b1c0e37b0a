"""RFCs for contract changes: ``rfc new|update|list`` and ``check --require-rfc``, in a real git repository.

The CLI runs in-process (``main``) from inside a temporary repository, because ``git:REF:PATH`` is
resolved from the current directory; git itself is the real one, bounded by a timeout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from otel_contract.cli import main
from otel_contract.rfc import (
    BEGIN,
    END,
    TEMPLATE,
    RfcError,
    Status,
    next_number,
    parse,
    replace_schema_diff,
    slug,
)

from .conftest import CONTRACTS, git

TODAY = "2026-11-22"
CONTRACT = "contracts/shop.yaml"
RFCS = Path("contracts/rfcs")

ORG_V1 = """\
contract: org
version: 1.0.0
resource:
  required: [service.name]
"""
# The breaking change lives in the include: the base must be read with its includes from git.
ORG_V2 = ORG_V1.replace("[service.name]", "[service.name, k8s.pod.name]")

SHOP_V1 = """\
contract: shop
version: 1.0.0
description: The shop.
owners: [team-shop]
include: [base/org.yaml]
metrics:
  - name: shop_orders_total
    type: sum
    monotonic: true
    temporality: cumulative
    unit: '{order}'
    description: Orders placed
    owner: team-shop
    stability: stable
    collection: otel-sdk
    precision: 0
"""
SHOP_V2 = (
    SHOP_V1.replace("version: 1.0.0", "version: 2.0.0")
    + """\
  - name: shop_cart_items
    type: gauge
    unit: '{item}'
    description: Items in open carts
    owner: team-cart
    stability: experimental
    collection: otel-collector hostmetrics receiver
    precision: 0
"""
)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``main`` holds shop 1.0.0; the branch ``change`` (checked out) holds 2.0.0: a breaking change in the
    include and an added metric."""
    monkeypatch.delenv("CHANGE_TARGET", raising=False)  # Jenkins sets it in change requests
    root = tmp_path / "repo"
    (root / "contracts" / "base").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "contracts" / "base" / "org.yaml").write_text(ORG_V1, encoding="utf-8")
    (root / CONTRACT).write_text(SHOP_V1, encoding="utf-8")
    git(root, "add", "contracts")
    git(root, "commit", "-q", "-m", "shop 1.0.0")
    git(root, "checkout", "-q", "-b", "change")
    (root / "contracts" / "base" / "org.yaml").write_text(ORG_V2, encoding="utf-8")
    (root / CONTRACT).write_text(SHOP_V2, encoding="utf-8")
    git(root, "commit", "-q", "-a", "-m", "shop 2.0.0")
    monkeypatch.chdir(root)
    yield root


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    def _run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return _run


def _new(cli: Callable[..., Run], title: str, *extra: str) -> Run:
    return cli("rfc", "new", "-c", CONTRACT, "--author", "alice", "--today", TODAY, *extra, title)


def _check(cli: Callable[..., Run], *extra: str) -> Run:
    return cli("check", CONTRACT, "--today", TODAY, "--require-rfc", *extra)


def _sections(markdown: str) -> dict[str, list[Token]]:
    """The tokens under each heading, by the heading's text."""
    sections: dict[str, list[Token]] = {}
    current: list[Token] = []
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            current = sections.setdefault(tokens[index + 1].content, [])
        current.append(token)
    return sections


def _cells(tokens: list[Token]) -> list[str]:
    return [token.content for token in tokens if token.type == "inline" and token.level >= 3]


# --- rfc new -------------------------------------------------------------------------------------------


def test_rfc_new_writes_the_template_with_front_matter_and_the_schema_diff(repo: Path, cli: Callable[..., Run]) -> None:
    run = _new(cli, "Require pod names!", "--base", "git:main:contracts/shop.yaml")

    assert run.code == 0, run.err
    path = RFCS / "0001-require-pod-names.md"
    assert f"wrote RFC 0001 (shop 1.0.0 -> 2.0.0) to {path}" in run.err
    text = path.read_text(encoding="utf-8")
    rfc = parse(text, str(path), 1)
    assert (rfc.contract, rfc.version, rfc.base_version, rfc.status) == ("shop", "2.0.0", "1.0.0", Status.DRAFT)
    assert (rfc.title, rfc.authors, rfc.owners, rfc.created) == (
        "Require pod names!",
        ("alice",),
        ("team-shop",),
        TODAY,
    )
    assert "# the contract version this RFC introduces" in text  # the template's comments survive

    sections = _sections(text)
    for heading in (
        "RFC 0001: Require pod names!",
        "Summary",
        "Motivation",
        "How the data is collected",
        "Precision consumers may rely on",
        "Lifecycle",
        "Owners",
        "Rollout plan",
        "Compat shim plan and expiry",
        "Schema diff",
        "Decision",
    ):
        assert heading in sections, heading
    # Only the added metric is touched; the unchanged one is not the reviewers' business.
    assert _cells(sections["How the data is collected"]) == [
        "metric", "collection", "stability",
        "`shop_cart_items`", "`otel-collector hostmetrics receiver`", "experimental",
    ]  # fmt: skip
    assert "`{item}`" in _cells(sections["Precision consumers may rely on"])

    diff = text[text.index(BEGIN) : text.index(END)]
    headings = [heading for heading in _sections(diff) if heading]
    assert headings[0] == "Schema diff: shop 1.0.0 → shop 2.0.0"
    assert headings.index("Breaking changes") < headings.index("Other changes")
    diff_sections = _sections(diff)
    assert "k8s.pod.name on the resource" in _cells(diff_sections["resource"])
    assert any("shop\\_cart\\_items" in cell for cell in _cells(diff_sections["metrics"]))


def test_rfc_new_defaults_to_head_and_takes_the_next_free_number(repo: Path, cli: Callable[..., Run]) -> None:
    RFCS.mkdir()
    (RFCS / "0007-older.md").write_text("not even front matter: numbering reads names only\n", encoding="utf-8")
    changed = SHOP_V2.replace("2.0.0", "2.0.1").replace("Items in open carts", "Items in open shopping carts")
    (repo / CONTRACT).write_text(changed, encoding="utf-8")

    first, second = _new(cli, "Budget cart items"), _new(cli, "Budget cart items")

    assert (first.code, second.code) == (0, 0), first.err + second.err
    assert sorted(path.name for path in RFCS.iterdir()) == [
        "0007-older.md",
        "0008-budget-cart-items.md",
        "0009-budget-cart-items.md",
    ]
    rfc = parse((RFCS / "0008-budget-cart-items.md").read_text(encoding="utf-8"), "0008", 8)
    assert (rfc.base_version, rfc.version) == ("2.0.0", "2.0.1")  # the base was git:HEAD:contracts/shop.yaml


def test_rfc_new_uses_the_directory_template(repo: Path, cli: Callable[..., Run]) -> None:
    RFCS.mkdir()
    (RFCS / "TEMPLATE.md").write_text(
        f"---\ntitle: t\ncontract: c\nversion: 0.0.0\nstatus: draft\nteam: payments\n---\n"
        f"# {{{{title}}}} ({{{{contract}}}} {{{{version}}}}, {{{{unknown}}}})\n{BEGIN}\n{END}\n",
        encoding="utf-8",
    )

    run = _new(cli, "Ours", "--base", "git:main:contracts/shop.yaml")

    text = (RFCS / "0001-ours.md").read_text(encoding="utf-8")
    assert run.code == 0, run.err
    assert "team: payments\n" in text  # the team's own keys are kept
    assert "# Ours (shop 2.0.0, {{unknown}})\n" in text
    assert "### Schema diff: shop 1.0.0 → shop 2.0.0" in text


def test_rfc_new_refuses_to_overwrite(repo: Path, cli: Callable[..., Run]) -> None:
    existing = repo / "mine.md"
    existing.write_text("reviewed prose\n", encoding="utf-8")

    run = _new(cli, "Again", "--base", "git:main:contracts/shop.yaml", "--output", "mine.md")

    assert run.code == 2
    assert "mine.md exists; an RFC is never overwritten" in run.err
    assert existing.read_text(encoding="utf-8") == "reviewed prose\n"


@pytest.mark.parametrize(
    ("base", "reason"),
    [
        ("git:nosuch:contracts/shop.yaml", "'nosuch' is not a commit"),
        ("git:main:contracts/absent.yaml", "does not exist in 'main'"),
        ("missing.yaml", "missing.yaml"),
    ],
)
def test_rfc_new_with_a_bad_base_exits_2_and_writes_nothing(
    repo: Path, cli: Callable[..., Run], base: str, reason: str
) -> None:
    run = _new(cli, "Nope", "--base", base)

    assert run.code == 2
    assert reason in run.err
    assert not RFCS.exists()


def test_rfc_new_writes_the_rfc_but_exits_1_when_the_version_gate_fails(repo: Path, cli: Callable[..., Run]) -> None:
    (repo / CONTRACT).write_text(SHOP_V2.replace("2.0.0", "1.1.0"), encoding="utf-8")

    run = _new(cli, "Too small a step", "--base", "git:main:contracts/shop.yaml")

    assert run.code == 1
    assert "the version gate fails" in run.err and "set version: 2.0.0 in contracts/shop.yaml" in run.err
    assert "**Version gate: ❌ failed.**" in (RFCS / "0001-too-small-a-step.md").read_text(encoding="utf-8")


def test_rfc_new_for_a_contract_absent_at_the_base(repo: Path, cli: Callable[..., Run]) -> None:
    (repo / "contracts" / "fresh.yaml").write_text(SHOP_V1.replace("contract: shop", "contract: fresh"), "utf-8")

    run = cli("rfc", "new", "-c", "contracts/fresh.yaml", "--today", TODAY, "--author", "bob", "A new contract")

    assert run.code == 0, run.err
    rfc = parse((RFCS / "0001-a-new-contract.md").read_text(encoding="utf-8"), "0001", 1)
    assert (rfc.contract, rfc.version, rfc.base_version) == ("fresh", "1.0.0", None)
    assert "new contract fresh@1.0.0" in run.err


# --- rfc update, rfc list ----------------------------------------------------------------------------


def test_rfc_update_refreshes_versions_and_diff_and_keeps_the_prose(repo: Path, cli: Callable[..., Run]) -> None:
    (repo / CONTRACT).write_text(SHOP_V2.replace("2.0.0", "1.1.0"), encoding="utf-8")
    assert _new(cli, "Step", "--base", "git:main:contracts/shop.yaml").code == 1
    path = RFCS / "0001-step.md"
    path.write_text(path.read_text(encoding="utf-8").replace("_One paragraph", "We need pods."), encoding="utf-8")
    (repo / CONTRACT).write_text(SHOP_V2, encoding="utf-8")  # review asked for the major step

    run = cli("rfc", "update", str(path), "-c", CONTRACT, "--base", "git:main:contracts/shop.yaml")

    assert run.code == 0, run.err
    text = path.read_text(encoding="utf-8")
    assert parse(text, str(path), 1).version == "2.0.0"
    assert "version: 2.0.0             # the contract version this RFC introduces" in text
    assert "We need pods." in text
    assert "**Version gate: ✅ passed.**" in text and "❌" not in text
    assert text.count(BEGIN) == text.count(END) == 1


def test_rfc_list_shows_every_rfc(repo: Path, cli: Callable[..., Run]) -> None:
    assert _new(cli, "Listed", "--base", "git:main:contracts/shop.yaml").code == 0

    run = cli("rfc", "list")

    assert run.code == 0
    assert run.out == f"0001  draft     shop 1.0.0 -> 2.0.0  Listed  ({RFCS / '0001-listed.md'})\n"


def test_rfc_update_with_another_contract_exits_2_and_leaves_the_rfc(repo: Path, cli: Callable[..., Run]) -> None:
    assert _new(cli, "Other", "--base", "git:main:contracts/shop.yaml").code == 0
    path = RFCS / "0001-other.md"
    before = path.read_text(encoding="utf-8")

    run = cli("rfc", "update", str(path), "-c", "contracts/base/org.yaml", "--base", "contracts/base/org.yaml")

    assert run.code == 2
    assert run.err == f"otel-contract: error: {path} is about contract shop, but contracts/base/org.yaml is org\n"
    assert path.read_text(encoding="utf-8") == before


def test_the_rfc_use_cases_answer_with_data_without_the_cli(repo: Path) -> None:
    """rfc/commands.py is what ``rfc new|update|list`` do; the CLI only reads arguments and prints."""
    from datetime import date

    from otel_contract import load_contract
    from otel_contract.rfc.commands import Base, RfcExists, default_base, list_rfcs, new_rfc

    new = load_contract(CONTRACT).contract
    base = default_base(CONTRACT, {}, repo)
    assert base.spec == "git:HEAD:contracts/shop.yaml" and base.exists
    old = Base(load_contract("contracts/shop.yaml").contract, "contracts/shop.yaml")  # 2.0.0 against itself
    options = dict(contract_path=CONTRACT, directory=RFCS, output=None, authors=["al"], created=date(2026, 11, 22))

    written = new_rfc(new, old, title="Same", cwd=repo, **options)  # type: ignore[arg-type]

    assert (written.path, written.label, written.change) == (
        str(RFCS / "0001-same.md"),
        "RFC 0001",
        "shop 2.0.0 -> 2.0.0",
    )
    assert written.advice.message is not None and not written.advice.fails
    assert list(list_rfcs([RFCS])) == [f"0001  draft     shop 2.0.0 -> 2.0.0  Same  ({RFCS / '0001-same.md'})"]
    with pytest.raises(RfcExists):  # the same file again: an RFC is never overwritten
        new_rfc(new, old, title="Same", cwd=repo, **{**options, "output": RFCS / "0001-same.md"})  # type: ignore[arg-type]


# --- check --require-rfc ----------------------------------------------------------------------------


def test_require_rfc_fails_without_an_rfc_naming_the_new_version(repo: Path, cli: Callable[..., Run]) -> None:
    run = _check(cli, "--rfc-base", "main")

    assert run.code == 1
    assert run.out.startswith("contracts/shop.yaml:2:10: error[missing-rfc] version: contract shop went 1.0.0 -> 2.0.0")
    assert "otel-contract rfc new -c contracts/shop.yaml --base git:main:contracts/shop.yaml" in run.out


def test_require_rfc_finding_is_in_the_json_report(repo: Path, cli: Callable[..., Run]) -> None:
    run = _check(cli, "--rfc-base", "main", "--format", "json")

    report = json.loads(run.out)
    assert run.code == 1
    assert [(f["rule"], f["level"], f["source"]) for f in report["findings"]] == [
        ("missing-rfc", "error", "contracts/shop.yaml:2:10")
    ]


def test_require_rfc_passes_with_an_rfc_naming_the_new_version(repo: Path, cli: Callable[..., Run]) -> None:
    assert _new(cli, "Pods", "--base", "git:main:contracts/shop.yaml").code == 0

    run = _check(cli, "--rfc-base", "main")

    assert run.code == 0, run.out + run.err
    assert "missing-rfc" not in run.out


@pytest.mark.parametrize(
    ("edit", "hint"),
    [(("status: draft", "status: rejected"), "RFC 0001 was rejected"), (("2.0.0", "1.5.0"), "RFC 0001 names 1.5.0")],
)
def test_require_rfc_does_not_count_a_rejected_rfc_or_another_version(
    repo: Path, cli: Callable[..., Run], edit: tuple[str, str], hint: str
) -> None:
    assert _new(cli, "Pods", "--base", "git:main:contracts/shop.yaml").code == 0
    path = RFCS / "0001-pods.md"
    text = path.read_text(encoding="utf-8")
    front, body = text.split("\n---\n", 1)
    path.write_text(front.replace(*edit) + "\n---\n" + body, encoding="utf-8")

    run = _check(cli, "--rfc-base", "main")

    assert run.code == 1
    assert hint in run.out


def test_require_rfc_passes_when_the_version_did_not_change(repo: Path, cli: Callable[..., Run]) -> None:
    # HEAD is the change itself: same version, no RFC needed (the diff gate judges the changes).
    assert _check(cli, "--rfc-base", "HEAD").code == 0


def test_require_rfc_needs_an_rfc_for_a_new_contract(repo: Path, cli: Callable[..., Run]) -> None:
    (repo / "contracts" / "fresh.yaml").write_text(SHOP_V1.replace("contract: shop", "contract: fresh"), "utf-8")

    run = cli("check", "contracts/fresh.yaml", "--today", TODAY, "--require-rfc", "--rfc-base", "main")

    assert run.code == 1
    assert "contract fresh is new at 1.0.0 against main" in run.out


def test_require_rfc_default_base_is_the_change_target(
    repo: Path, cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _check(cli).code == 0  # no origin/main: HEAD, where the version is the same
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    assert "against origin/main" in _check(cli).out

    monkeypatch.setenv("CHANGE_TARGET", "release")
    run = _check(cli)

    assert run.code == 2
    assert "origin/release" in run.err


def test_require_rfc_with_broken_front_matter_exits_2_naming_file_and_line(repo: Path, cli: Callable[..., Run]) -> None:
    RFCS.mkdir()
    (RFCS / "0001-broken.md").write_text(
        "---\ntitle: Broken\ncontract: shop\nversion: 2.0.0\nstatus: done\n---\n# Broken\n", encoding="utf-8"
    )

    checked, listed = _check(cli, "--rfc-base", "main"), cli("rfc", "list")

    for run in (checked, listed):
        assert run.code == 2
        assert (
            f"{RFCS / '0001-broken.md'}:5:9: status 'done' is not one of draft, review, accepted, rejected" in run.err
        )


def test_rfc_options_need_require_rfc(repo: Path, cli: Callable[..., Run]) -> None:
    run = cli("check", CONTRACT, "--rfc-base", "main")

    assert run.code == 2
    assert "--require-rfc" in run.err


# --- pure parts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("# no front matter\n", 1, "no front matter"),
        ("---\ntitle: x\n", 1, "not closed"),
        ("---\ntitle: x\ncontract: [a\n---\n", 4, "not YAML"),
        ("---\ntitle: x\ncontract: c\n---\n", 2, "lacks version, status"),
        ("---\ntitle: x\ncontract: c\nversion: 2.0\nstatus: draft\n---\n", 4, "got 2.0"),
        ("---\ntitle: x\ncontract: c\nversion: 2.0.0\nstatus: draft\nauthors: alice\n---\n", 6, "list of names"),
        ("---\ntitle: x\ntitle: y\ncontract: c\nversion: 2.0.0\nstatus: draft\n---\n", 3, "duplicate key"),
    ],
)
def test_front_matter_errors_name_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(RfcError) as raised:
        parse(text, "0001-x.md", 1)

    assert (raised.value.location.file, raised.value.location.line) == ("0001-x.md", line)
    assert reason in raised.value.reason


def test_slug_and_numbers() -> None:
    assert slug("Rename http_status → http.status_code (v2)!") == "rename-http-status-http-status-code-v2"
    assert slug("Überwachung für Kassen") == "uberwachung-fur-kassen"
    assert slug("!!!") == "rfc"
    assert len(slug("word " * 40)) <= 60
    assert next_number([]) == 1
    assert next_number(["README.md", "TEMPLATE.md", "0002-a.md", "0010-b.md", "12-c.md"]) == 11


def test_schema_diff_markers_are_required_once() -> None:
    assert replace_schema_diff(f"a\n{BEGIN}\nold\n{END}\nb\n", "x.md", "new") == f"a\n{BEGIN}\nnew\n{END}\nb\n"
    with pytest.raises(RfcError, match=r"x\.md:1:1: no"):
        replace_schema_diff("no markers\n", "x.md", "new")
    with pytest.raises(RfcError, match=r"x\.md:3:1: 2"):
        replace_schema_diff(f"{BEGIN}\n{END}\n{BEGIN}\n", "x.md", "new")


def test_repository_template_is_the_built_in_one() -> None:
    assert (CONTRACTS / "rfcs" / "TEMPLATE.md").read_text(encoding="utf-8") == TEMPLATE
