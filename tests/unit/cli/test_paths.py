"""Names from the bucket: only plain relative paths become local paths, and never through a symlink."""

from pathlib import Path

import pytest

from modelplane.cli.paths import UnsafeNameError, inside, unsafe_reason

UNSAFE = ["../evil", "//etc/x", "/etc/passwd", "a/../../b", "a/..", "..", ".", "a/./b", "a\\b", "..\\evil", "C:/x",
          "c:x", "a//b", "x/", "", "a\0b"]
SAFE = ["a", "a/b.txt", ".hidden/x", "..foo", "a..b/c...", "C_drive/x", "notes:v2.txt", "dir/-x", "ünïcode/名"]


@pytest.mark.parametrize("name", UNSAFE)
def test_names_that_are_not_plain_relative_paths_are_unsafe(name: str) -> None:
    assert unsafe_reason(name) is not None
    with pytest.raises(UnsafeNameError):
        inside(Path("/nowhere"), name)


@pytest.mark.parametrize("name", SAFE)
def test_plain_relative_names_are_safe(name: str) -> None:
    assert unsafe_reason(name) is None
    assert inside(Path("/nowhere"), name) == Path("/nowhere", *name.split("/"))


def test_a_symlink_below_the_root_is_refused_the_root_itself_may_be_one(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "real" / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "real" / "file-link").symlink_to(tmp_path / "outside" / "x")
    (tmp_path / "root").symlink_to(tmp_path / "real", target_is_directory=True)
    for name in ("link/x", "link", "file-link", "link/a/b"):
        with pytest.raises(UnsafeNameError, match="symlink"):
            inside(tmp_path / "root", name)
    assert inside(tmp_path / "root", "sub/x") == tmp_path / "root" / "sub" / "x"
