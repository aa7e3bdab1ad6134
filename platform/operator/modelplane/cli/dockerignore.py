"""Docker's `.dockerignore` rules, ported from the code `docker build` runs, so `pack` sends what Docker would.

Ported from github.com/moby/patternmatcher at commit 5a6d8429a19bb6948a372ff19e86fe83599a04b7 (2026-03-24):
`ignorefile/ignorefile.go` (ReadAll: how the file is read) and `patternmatcher.go` (New, MatchesOrParentMatches,
Pattern.compile and Pattern.match: how a path is matched), with the two pieces of Go's standard library they lean on:
`filepath.Clean` and the syntax check of `filepath.Match` that New runs on every pattern. Upstream's test tables are
ported in tests/unit/cli/test_dockerignore.py.

The rules, in short: a line starting with `#` is a comment; surrounding whitespace is trimmed; each pattern is
cleaned (`./x` is `x`, `a/../b` is `b`, a trailing `/` goes) and loses one leading `/`; `*` and `?` never cross a
`/`, `**` crosses any number of directories; a pattern matches a path or any of its parent directories; `!` makes an
exception, and the last pattern that matches decides.

Faithful for slash-separated paths (the Windows-only branches are not ported), with two known differences:
- Go compiles a pattern's regexp at its first use, so a pattern its regexp engine rejects fails only once a path
  reaches it; here every pattern is compiled when the file is read, so such a file is refused up front.
- The regexp is Python's, compiled with re.ASCII like Go's: the same for everything compile() emits (its one group
  is non-capturing here, which changes no match), except escapes only one engine knows (`\\p{Greek}`, `\\Q..\\E`,
  `\\z` are Go's; `\\u`, `\\N{..}`, `\\Z` are Python's) and POSIX classes (`[[:alpha:]]`, Go only). None of these
  has a meaning in a path pattern.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

# Go's unicode.IsSpace (strings.TrimSpace): Python's str.strip() would also trim \x1c-\x1f.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
            "\u2028\u2029\u202f\u205f\u3000"
_BOM = "\ufeff"
_REGEXP_SPECIAL = ".+()|{}$"  # escaped by compile(): special in a regexp, plain in a path pattern


class BadPatternError(ValueError):
    """A pattern `docker build` refuses too (filepath.ErrBadPattern, or a lone `!`)."""


def clean(path: str) -> str:
    """Go's filepath.Clean on a slash-separated path (posixpath.normpath keeps a leading `//`; Go does not)."""
    cleaned = posixpath.normpath(path)
    return cleaned[1:] if cleaned.startswith("//") else cleaned


def read_patterns(text: str) -> list[str]:
    """ignorefile.ReadAll: the patterns of an ignore file's text, cleaned, comments and blank lines dropped."""
    patterns = []
    for number, line in enumerate(text.split("\n")):
        line = line.removesuffix("\r")  # bufio.ScanLines drops a trailing \r
        if number == 0:
            line = line.removeprefix(_BOM)
        if line.startswith("#"):  # a comment only in column 1: " # x" is a pattern
            continue
        pattern = line.strip(_GO_SPACE)
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = pattern[1:].strip(_GO_SPACE)
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


class _Kind(Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEXP = "regexp"


@dataclass(frozen=True)
class Pattern:
    text: str  # cleaned, without its `!`
    exclusion: bool
    kind: _Kind
    regexp: re.Pattern[str] | None

    @classmethod
    def compile(cls, text: str, exclusion: bool) -> Pattern:
        """Pattern.compile, line by line: which shortcut matches the pattern, else the regexp it becomes."""
        regexp, kind = "", _Kind.EXACT
        position, iteration = 0, 0  # compile's `i` counts loop turns, not characters: `**/` is one turn
        while position < len(text):
            char = text[position]
            position += 1
            if char == "*":
                if text[position:position + 1] == "*":  # some flavour of **
                    position += 1
                    if text[position:position + 1] == "/":  # **/ is **
                        position += 1
                    if position == len(text):  # ** at the end: everything below
                        if kind is _Kind.EXACT:
                            kind = _Kind.PREFIX
                        else:
                            regexp += ".*"
                            kind = _Kind.REGEXP
                    else:  # any number of directories, none included
                        regexp += "(?:.*/)?"  # Go's (.*/)? without the capture, so `\1` stays an error
                        kind = _Kind.REGEXP
                    if iteration == 0:
                        kind = _Kind.SUFFIX
                else:
                    regexp += "[^/]*"
                    kind = _Kind.REGEXP
            elif char == "?":
                regexp += "[^/]"
                kind = _Kind.REGEXP
            elif char in _REGEXP_SPECIAL:
                regexp += "\\" + char
            elif char == "\\":  # escapes the next character
                if position < len(text):
                    regexp += "\\" + text[position]
                    position += 1
                    kind = _Kind.REGEXP
                else:
                    regexp += "\\"
            elif char in "[]":
                regexp += char
                kind = _Kind.REGEXP
            else:
                regexp += char
            iteration += 1
        compiled = None
        if kind is _Kind.REGEXP:
            try:
                compiled = re.compile(regexp, re.ASCII)
            except re.error as error:
                raise BadPatternError(f"bad pattern {text!r}: {error}") from error
        return cls(text, exclusion, kind, compiled)

    def match(self, path: str) -> bool:
        if self.kind is _Kind.EXACT:
            return path == self.text
        if self.kind is _Kind.PREFIX:
            return path.startswith(self.text[:-2])  # without the trailing **
        if self.kind is _Kind.SUFFIX:
            suffix = self.text[2:]  # without the leading **
            return path.endswith(suffix) or (suffix[0] == "/" and path == suffix[1:])  # **/foo matches foo
        assert self.regexp is not None
        return self.regexp.fullmatch(path) is not None


class PatternMatcher:
    """patternmatcher.New and MatchesOrParentMatches: whether a path is excluded by the patterns."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[Pattern] = []
        for line in patterns:
            text = line.strip(_GO_SPACE)
            if not text:
                continue
            text = clean(text)
            exclusion = text[0] == "!"
            if exclusion:
                if len(text) == 1:
                    raise BadPatternError('illegal exclusion pattern: "!"')
                text = text[1:]
            _check_syntax(text)
            self.patterns.append(Pattern.compile(text, exclusion))
        self.exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Whether `path` (relative, slash-separated) is excluded: the last pattern matching it or a parent decides.

        MatchesOrParentMatches; BuildKit's walk (fsutil) asks MatchesUsingParentResults, its incremental twin, which
        upstream's tests hold to the same answers.
        """
        parent = clean(path[:path.rfind("/") + 1])  # filepath.Dir
        parents = parent.split("/") if parent != "." else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:  # only an exception can undo a match, only a pattern make one
                continue
            match = pattern.match(path) or any(pattern.match("/".join(parents[:depth + 1]))
                                               for depth in range(len(parents)))
            if match:
                matched = not pattern.exclusion
        return matched


def _check_syntax(pattern: str) -> None:
    """The error filepath.Match(pattern, ".") returns (Go 1.16+ checks the whole pattern): unclosed or malformed
    character classes and a trailing backslash."""
    rest = pattern
    while rest:
        chunk, rest = _scan_chunk(rest.lstrip("*"))
        _check_chunk(pattern, chunk)


def _scan_chunk(pattern: str) -> tuple[str, str]:
    """filepath's scanChunk: the pattern up to the next `*` outside a character class."""
    in_range, index = False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 1 if index + 1 < len(pattern) else 0
        elif char == "[":
            in_range = True
        elif char == "]":
            in_range = False
        elif char == "*" and not in_range:
            break
        index += 1
    return pattern[:index], pattern[index:]


def _check_chunk(pattern: str, chunk: str) -> None:
    """The syntax half of filepath's matchChunk."""
    index = 0
    while index < len(chunk):
        char = chunk[index]
        if char == "[":
            index += 1
            if chunk[index:index + 1] == "^":
                index += 1
            ranges = 0
            while not (chunk[index:index + 1] == "]" and ranges > 0):
                index = _class_char(pattern, chunk, index)
                if chunk[index] == "-":
                    index = _class_char(pattern, chunk, index + 1)
                ranges += 1
            index += 1
        elif char == "\\":
            if index + 1 >= len(chunk):
                raise BadPatternError(f"bad pattern {pattern!r}: trailing backslash")
            index += 2
        else:
            index += 1


def _class_char(pattern: str, chunk: str, index: int) -> int:
    """filepath's getEsc: the index after one (possibly escaped) character of a class, which must not end there."""
    if index >= len(chunk) or chunk[index] in "-]":
        raise BadPatternError(f"bad pattern {pattern!r}: malformed character class")
    if chunk[index] == "\\":
        index += 1
        if index >= len(chunk):
            raise BadPatternError(f"bad pattern {pattern!r}: malformed character class")
    index += 1
    if index >= len(chunk):
        raise BadPatternError(f"bad pattern {pattern!r}: unclosed character class")
    return index
