"""Packing: ignore files honoured, and the same files always give the same MD5 (so unchanged code is not re-sent)."""

import io
import os
import tarfile
from pathlib import Path

from modelplane.cli.pack import included, pack


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_dockerignore_and_gitignore_are_honoured(tmp_path: Path) -> None:
    tree(tmp_path, {
        "Dockerfile": "FROM python:3.11-slim", "train.py": "print()", "data/big.bin": "x", "data/keep.txt": "k",
        "notes.pyc": "", "src/cache/x.pyc": "", ".git/HEAD": "ref", ".env": "SECRET=1",
        ".dockerignore": "data/\n!data/keep.txt\n.env\n", ".gitignore": "*.pyc\n",
        ".modelplane-sync.json": "{}",
    })
    # As with `docker build`, an exception (!) re-includes a file under an ignored directory.
    assert included(tmp_path) == [".dockerignore", ".gitignore", "Dockerfile", "data/keep.txt", "train.py"]


def test_md5_is_reproducible_and_content_sensitive(tmp_path: Path) -> None:
    tree(tmp_path / "a", {"Dockerfile": "FROM x", "src/main.py": "print(1)"})
    first = pack(tmp_path / "a")
    os.utime(tmp_path / "a" / "src" / "main.py", (1, 1))  # a touch changes nothing that matters
    assert pack(tmp_path / "a").md5 == first.md5
    tree(tmp_path / "b", {"src/main.py": "print(1)", "Dockerfile": "FROM x"})  # same files, other creation order
    assert pack(tmp_path / "b").md5 == first.md5
    (tmp_path / "a" / "src" / "main.py").write_text("print(2)")
    assert pack(tmp_path / "a").md5 != first.md5


def test_tarball_holds_exactly_the_included_files(tmp_path: Path) -> None:
    tree(tmp_path, {"Dockerfile": "FROM x", "run.sh": "#!/bin/sh", ".gitignore": "out/\n", "out/log": "l"})
    (tmp_path / "run.sh").chmod(0o755)
    packed = pack(tmp_path)
    with tarfile.open(fileobj=io.BytesIO(packed.data), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == [".gitignore", "Dockerfile", "run.sh"] == list(packed.files)
    assert members["run.sh"].mode == 0o755 and members["Dockerfile"].mode == 0o644
    assert {m.mtime for m in members.values()} == {0} and {m.uid for m in members.values()} == {0}
