"""Regular expressions users write into a contract: RE2 syntax, as Prometheus reads them.

Contract patterns (attribute values, resource attributes, naming rules) and the regexes of compat
shims are matched against telemetry, which anyone who can reach the receiver writes. Python's ``re``
backtracks: ``^(a+)+$`` against thirty ``a`` and a ``!`` runs for a minute and holds every thread that
waits for the engine. RE2 matches in time linear in the text whatever the pattern, and refuses the
constructs that need backtracking (backreferences, lookaround, possessive and atomic groups). Every
contract regex is compiled here, so ``check``, the sidecar and ``validate`` agree on what it means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AnyStr, TypeAlias

import re2

# RE2's bound on one compiled pattern (program and DFA cache); a pattern that needs more is refused.
# Two compiled forms per pattern (see Pattern) make it at most 4 MiB each.
_MAX_MEM = 2 << 20

Match: TypeAlias = "re2._Match[str]"


class PatternError(ValueError):
    """The text is not an RE2 regular expression; the message is RE2's reason."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """One compiled user regex.

    ``whole``: the regex must match the whole text (PromQL label matchers and ``label_replace``);
    otherwise it may match anywhere, and contract patterns anchor themselves with ``^`` and ``$``.
    """

    pattern: str
    whole: bool
    _regexp: re2._Regexp[str] = field(compare=False, repr=False)
    # RE2::Set answers "does it match" in one DFA pass, several times faster than the regexp's match
    # object from Python; but it also answers "no" when its DFA runs out of memory, so a "no" is
    # confirmed by the regexp, which falls back to RE2's NFA instead.
    _set: re2.Set = field(compare=False, repr=False)

    def matches(self, text: str) -> bool:
        data = _utf8(text)
        return self._set.Match(data) is not None or self._find(data) is not None

    def match(self, text: str) -> Match | None:
        """The match and its groups (``label_replace`` expands them), or None."""
        return self._find(text)

    def _find(self, text: AnyStr) -> re2._Match[AnyStr] | None:
        return self._regexp.fullmatch(text) if self.whole else self._regexp.search(text)


def _utf8(text: str) -> bytes:
    # A lone surrogate (JSON's "\ud800") has no strict UTF-8 form: RE2 gets its bytes, which it reads
    # like any invalid UTF-8 (. matches them), instead of the encoder raising in the middle of a request.
    return text.encode("utf-8", "surrogatepass")


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _MAX_MEM
    options.log_errors = False  # the reason goes into PatternError, not to stderr
    return options


def compile_pattern(pattern: str, *, whole: bool = False) -> Pattern:
    """``pattern`` compiled by RE2 (UTF-8, leftmost-first like Perl and Go); raises ``PatternError``."""
    options = _options()
    try:
        regexp = re2.compile(pattern, options)
        matcher = re2.Set.FullMatchSet(options) if whole else re2.Set.SearchSet(options)
        matcher.Add(pattern)
        matcher.Compile()
    except re2.error as error:
        reason = error.args[0] if error.args else "RE2 refused it"
        raise PatternError(reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)) from None
    return Pattern(pattern, whole, regexp, matcher)
