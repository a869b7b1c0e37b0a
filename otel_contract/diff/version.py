"""Semantic versions: which bump a version change is, which one a set of changes needs."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from otel_contract.contract.model import SEMVER
from otel_contract.diff.kinds import Impact


class Bump(enum.IntEnum):
    """A version step, ordered so that ``actual >= required`` says the step is big enough."""

    DOWNGRADE = -1
    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True, order=True)
class SemanticVersion:
    core: tuple[int, int, int]
    release: bool  # True sorts after False: a release follows its pre-releases (semver §11)
    prerelease: tuple[tuple[int, int | str], ...]


def version_key(version: str) -> SemanticVersion:
    """A sort key for a semantic version, ordered by semver precedence; ValueError when it is not one."""
    return _parse(version)


def _parse(version: str) -> SemanticVersion:
    match = SEMVER.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a semantic version (MAJOR.MINOR.PATCH)")
    major, minor, patch, prerelease, _build = match.groups()
    identifiers = tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in (prerelease.split(".") if prerelease else ())
    )
    return SemanticVersion((int(major), int(minor), int(patch)), prerelease is None, identifiers)


def bump_between(old: str, new: str) -> Bump:
    """The step from ``old`` to ``new``: the most significant core component that grew.

    A change of pre-release only (``2.0.0-rc.1`` → ``2.0.0-rc.2`` or → ``2.0.0``) counts as a patch;
    build metadata is ignored, as semver says.
    """
    before, after = _parse(old), _parse(new)
    if after < before:
        return Bump.DOWNGRADE
    if after == before:
        return Bump.NONE
    for index, step in enumerate((Bump.MAJOR, Bump.MINOR, Bump.PATCH)):
        if after.core[index] != before.core[index]:
            return step
    return Bump.PATCH


def required_bump(impact: Impact | None, version: str) -> Bump:
    """The smallest step that ``impact`` needs from ``version``.

    Below 1.0.0 anything may change (semver §4); a breaking change there needs a minor step, the
    convention of Cargo and npm's caret ranges.
    """
    if impact is None:
        return Bump.NONE
    if impact is Impact.BREAKING:
        return Bump.MAJOR if _parse(version).core[0] > 0 else Bump.MINOR
    return Bump.MINOR if impact is Impact.COMPATIBLE else Bump.PATCH


def next_version(version: str, bump: Bump) -> str:
    """``version`` stepped by ``bump``, dropping pre-release and build (``1.4.0`` + minor = ``1.5.0``)."""
    parsed = _parse(version)
    major, minor, patch = parsed.core
    if bump is Bump.PATCH and not parsed.release:
        return f"{major}.{minor}.{patch}"  # the release of a pre-release is its next step
    if bump is Bump.MAJOR:
        return f"{major + 1}.0.0"
    if bump is Bump.MINOR:
        return f"{major}.{minor + 1}.0"
    if bump is Bump.PATCH:
        return f"{major}.{minor}.{patch + 1}"
    return version
