"""Which files of a directory `pack` sends and the notebook sync carries: what its ignore files leave, each file read
the way the tool that owns it reads it.

- A `Dockerfile.dockerignore` or `.dockerignore` at the top (BuildKit prefers the first) decides alone, with Docker's
  rules (modelplane.cli.dockerignore): it is what the user wrote for `docker build`, which reads no .gitignore.
- Without one, every `.gitignore` applies, the top one and nested ones, with git's rules (pathspec's GitIgnoreSpec):
  a pattern is relative to its file's directory, a deeper file overrides a shallower one, and nothing below an
  ignored directory comes back. (Git's other sources, .git/info/exclude and core.excludesFile, are not read.)
- Whatever the files say, `.git` and the sync's own files are reserved: a hook planted in `.git` from the bucket would
  run on the laptop, and the sync's state must stay the laptop's.

A walk never follows a symlink: symlinks (and sockets, FIFOs) that are not ignored are listed as skipped, for the
caller to report. The rules also answer for names that are not on disk (the bucket's objects), so the sync treats
both sides alike: an ignored name is neither sent nor fetched nor deleted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pathspec

from modelplane.cli.dockerignore import BadPatternError, PatternMatcher, read_patterns
from modelplane.cli.errors import CliError, Exit

DOCKERIGNORE_FILES = ("Dockerfile.dockerignore", ".dockerignore")
GITIGNORE = ".gitignore"
SYNC_STATE = ".modelplane-sync.json"
PARTIAL_PREFIX = ".modelplane-partial-"  # a download being written, renamed into place when complete


# Code points HFS+ leaves out of a name, so `.g\u200cit` is `.git` there (git's CVE-2014-9390 list).
_HFS_IGNORED = re.compile("[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")


def _as_the_filesystem_sees_it(segment: str) -> str:
    """Case-insensitive (macOS, Windows), trailing dots and spaces dropped (Windows), HFS+'s ignored code points out:
    the spellings of `.git` a laptop's filesystem would take for `.git`."""
    return _HFS_IGNORED.sub("", segment).casefold().rstrip(". ")


def reserved(name: str) -> bool:
    """Names no ignore file can bring in: `.git` anywhere, the sync's state and its partial downloads."""
    segments = [_as_the_filesystem_sees_it(segment) for segment in name.split("/")]
    return ".git" in segments or segments[-1] == SYNC_STATE or segments[-1].startswith(PARTIAL_PREFIX)


class Rules(Protocol):
    def enter(self, relative: str, folder: Path) -> None:
        """Called as a walk enters a directory (`relative` is "" for the top), before any of its entries."""

    def ignores(self, name: str, is_dir: bool = False) -> bool:
        """Whether the relative POSIX path `name` is ignored (a file, or a directory when `is_dir`)."""

    def prunes(self, directory: str) -> bool:
        """Whether a walk may skip `directory` whole: nothing below it can be included."""


@dataclass
class DockerRules:
    matcher: PatternMatcher

    def enter(self, relative: str, folder: Path) -> None:
        pass  # one file, read up front

    def ignores(self, name: str, is_dir: bool = False) -> bool:
        return self.matcher.matches(name)

    def prunes(self, directory: str) -> bool:
        # An exception (!) may bring back a file below an ignored directory: only without one is the whole tree out.
        return not self.matcher.exclusions and self.matcher.matches(directory)


@dataclass
class GitRules:
    specs: dict[str, pathspec.GitIgnoreSpec] = field(default_factory=dict)  # by directory ("" is the top)

    def enter(self, relative: str, folder: Path) -> None:
        path = folder / GITIGNORE
        if path.is_file():
            self.specs[relative] = pathspec.GitIgnoreSpec.from_lines(
                path.read_text(encoding="utf-8", errors="surrogateescape").splitlines())

    def ignores(self, name: str, is_dir: bool = False) -> bool:
        segments = name.split("/")
        return any(self._ignores_itself(segments[:depth], is_dir or depth < len(segments))
                   for depth in range(1, len(segments) + 1))

    def prunes(self, directory: str) -> bool:
        return self.ignores(directory, is_dir=True)

    def _ignores_itself(self, segments: list[str], is_dir: bool) -> bool:
        """The verdict of the deepest .gitignore with an opinion on this path (its parents aside)."""
        for depth in range(len(segments) - 1, -1, -1):
            spec = self.specs.get("/".join(segments[:depth]))
            if spec is not None:
                verdict = spec.check_file("/".join(segments[depth:]) + ("/" if is_dir else "")).include
                if verdict is not None:
                    return verdict
        return False


def rules_for(directory: Path) -> Rules:
    for name in DOCKERIGNORE_FILES:
        path = directory / name
        if path.is_file():
            try:
                return DockerRules(PatternMatcher(read_patterns(path.read_text(encoding="utf-8",
                                                                               errors="surrogateescape"))))
            except BadPatternError as error:
                raise CliError(Exit.USAGE, f"{path}: {error}") from error
    return GitRules()


@dataclass(frozen=True)
class Listing:
    files: tuple[str, ...]  # regular files not ignored, as sorted relative POSIX paths
    skipped: tuple[str, ...]  # not ignored, but not regular files: symlinks (never followed), sockets, FIFOs
    rules: Rules

    def ignores(self, name: str) -> bool:
        return reserved(name) or self.rules.ignores(name)


def scan(directory: Path) -> Listing:
    """Walk `directory` (itself may be a symlink; nothing below it is followed) and apply its ignore files."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    rules = rules_for(directory)
    files, skipped, pending = [], [], [""]
    while pending:
        relative = pending.pop()
        folder = directory / relative
        rules.enter(relative, folder)
        with os.scandir(folder) as entries:
            for entry in entries:
                name = f"{relative}/{entry.name}" if relative else entry.name
                if reserved(name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if not rules.prunes(name):
                        pending.append(name)
                elif rules.ignores(name):
                    continue
                elif entry.is_file(follow_symlinks=False):
                    files.append(name)
                else:
                    skipped.append(name)
    return Listing(tuple(sorted(files)), tuple(sorted(skipped)), rules)
