"""The .dockerignore port against upstream's own tests.

Ported from github.com/moby/patternmatcher at 5a6d8429a19bb6948a372ff19e86fe83599a04b7: patternmatcher_test.go
(TestMatches' tables, run there through MatchesOrParentMatches; TestMatch's table, Go's filepath.Match cases; the
TestCleanPatterns* and TestSingleExclamationError cases; TestCompile's match types) and ignorefile/ignorefile_test.go
(TestReadAll). Windows-only rows are left out, as in the port.
"""

import pytest

from modelplane.cli.dockerignore import BadPatternError, Pattern, PatternMatcher, read_patterns

# TestMatches: (pattern, path, excluded)
MATCHES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True), ("**", "/", True),
    ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True), ("**", "dir/file/", True),
    ("**/", "dir/file/", True), ("**/**", "dir/file", True), ("**/**", "dir/file/", True), ("dir/**", "dir/file", True),
    ("dir/**", "dir/file/", True), ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True),
    ("**/dir", "dir", True), ("**/dir", "dir/file", True), ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/*", "dir/dir2/file/", True), ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file/", True), ("**file", "file", True), ("**file", "dir/file", True),
    ("**/file", "dir/file", True), ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file", True), ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True), ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True), ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True), (".*", ".foo", True),
    (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True), ("abc.def", "abcZdef", False),
    ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False), ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/foo/bar", True), ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False),
    ("abc/**", "abc/def", True), ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),  # not on Windows
]

# TestMatches' multiPatternTests, and the single-test functions above it: (patterns, path, excluded)
MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["*"], "fileutils.go", True),  # TestWildcardMatches
    (["*.go"], "fileutils.go", True),  # TestPatternMatches
    (["!fileutils.go", "*.go"], "fileutils.go", True),  # TestExclusionPatternMatchesPatternBefore
    (["docs", "!docs/README.md"], "docs/README.md", False),  # TestPatternMatchesFolderExclusions
    (["docs/", "!docs/README.md"], "docs/README.md", False),  # ...WithSlashExclusions
    (["docs/*", "!docs/README.md"], "docs/README.md", False),  # ...WildcardExclusions
    (["*.go", "!fileutils.go"], "fileutils.go", False),  # TestExclusionPatternMatchesPatternAfter
    ([], "/any/path/there", False),  # TestMatchesWithNoPatterns
]

# TestMatch: Go's filepath.Match cases, through the matcher; None where Go answers ErrBadPattern
GO_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True), ("a*", "abc", True),
    ("a*", "ab/c", True), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False), ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True), ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False), ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False), ("ab[c]", "abc", True), ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False), ("ab[^e-g]", "abc", True), ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False), ("a?b", "a☺b", True), ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False), ("[a-ζ]*", "\u03b1", True), ("*[a-ζ]", "A", False), ("a?b", "a/b", False),
    ("a*b", "a/b", False), ("[\\]a]", "]", True), ("[\\-]", "-", True), ("[x\\-]", "x", True), ("[x\\-]", "-", True),
    ("[x\\-]", "z", False), ("[\\-x]", "x", True), ("[\\-x]", "-", True), ("[\\-x]", "a", False),
    ("[]a]", "]", None), ("[-]", "-", None), ("[x-]", "x", None), ("[x-]", "-", None), ("[x-]", "z", None),
    ("[-x]", "x", None), ("[-x]", "-", None), ("[-x]", "a", None), ("\\", "a", None), ("[a-b-c]", "a", None),
    ("[", "a", None), ("[^", "a", None), ("[^bc", "a", None), ("a[", "a", None), ("a[", "ab", None),
    ("*x", "xxx", True),
]


@pytest.mark.parametrize(("pattern", "path", "excluded"), MATCHES)
def test_upstream_single_patterns(pattern: str, path: str, excluded: bool) -> None:
    assert PatternMatcher([pattern]).matches(path) is excluded


@pytest.mark.parametrize(("patterns", "path", "excluded"), MULTI)
def test_upstream_pattern_lists_last_match_wins(patterns: list[str], path: str, excluded: bool) -> None:
    assert PatternMatcher(patterns).matches(path) is excluded


@pytest.mark.parametrize(("pattern", "path", "excluded"), GO_MATCH)
def test_upstream_go_match_cases(pattern: str, path: str, excluded: bool | None) -> None:
    if excluded is None:
        with pytest.raises(BadPatternError):
            PatternMatcher([pattern])
    else:
        assert PatternMatcher([pattern]).matches(path) is excluded


def test_upstream_pattern_cleaning() -> None:
    assert len(PatternMatcher(["docs", "config", ""]).patterns) == 2  # TestCleanPatternsStripEmptyPatterns
    for patterns in (["docs", "!docs/README.md"], ["docs", "  !docs/README.md"], ["docs", "!docs/README.md  "]):
        assert PatternMatcher(patterns).exclusions  # TestCleanPatternsExceptionFlag, ...LeadingSpace/TrailingSpace
    with pytest.raises(BadPatternError):
        PatternMatcher(["!"])  # TestCleanPatternsErrorSingleException, TestSingleExclamationError
    with pytest.raises(BadPatternError):
        PatternMatcher(["[Local-Only]/"])  # the moby#52203 regression: a pattern Go's regexp refuses


@pytest.mark.parametrize(("pattern", "kind"), [
    ("*", "regexp"), ("file*", "regexp"), ("*file", "regexp"), ("a*/b", "regexp"), ("**", "suffix"),
    ("**/**", "regexp"), ("dir/**", "prefix"), ("**/dir", "suffix"), ("**/dir2/*", "regexp"), ("**/dir2/**", "regexp"),
    ("**file", "suffix"), ("**/file*txt", "regexp"), ("**/**/*.txt", "regexp"), ("a[b-d]e", "regexp"),
    (".*", "regexp"), ("abc.def", "exact"), ("abc?def", "regexp"), ("**/foo/bar", "suffix"), ("a(b)c/def", "exact"),
    ("a.|)$(}+{bc", "exact"), ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "exact"),
])
def test_upstream_compile_picks_the_same_shortcut(pattern: str, kind: str) -> None:
    assert Pattern.compile(pattern, exclusion=False).kind.value == kind  # TestCompile


def test_upstream_read_all() -> None:
    content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! "
    assert read_patterns(content) == ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"]


def test_reading_cleans_like_docker() -> None:
    """What Docker's documentation promises, beyond upstream's tables: ./ and / prefixes go, a BOM and CRLFs too,
    trailing whitespace is trimmed, and a # is a comment only in the first column."""
    text = "\ufeff./.env\r\n/build/\n**/*.pyc   \n  # not a comment\nsrc/../secrets\n!./keep.env\n"
    assert read_patterns(text) == [".env", "build", "**/*.pyc", "# not a comment", "secrets", "!keep.env"]
    matcher = PatternMatcher(read_patterns(text))
    assert [path for path in (".env", "build/out.o", "a/b/c.pyc", "secrets/key", "keep.env", "src/main.py")
            if matcher.matches(path)] == [".env", "build/out.o", "a/b/c.pyc", "secrets/key"]
