"""Packing: ignore files honoured, and the same files always give the same MD5 (so unchanged code is not re-sent)."""

import hashlib
import io
import os
import random
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from modelplane.cli.errors import CliError, Exit
from modelplane.cli.pack import pack


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_dockerignore_decides_as_docker_does(tmp_path: Path) -> None:
    tree(tmp_path, {
        "Dockerfile": "FROM python:3.11-slim", "train.py": "print()", "data/big.bin": "x", "data/keep.txt": "k",
        "notes.pyc": "", "src/cache/x.pyc": "", "src/env/.env": "nested", ".env": "SECRET=1", "build/out.o": "",
        ".git/HEAD": "ref", ".modelplane-sync.json": "{}", ".gitignore": "train.py\n",
        ".dockerignore": "# what docker build leaves out\n./.env\n**/*.pyc\ndata/\n!data/keep.txt\n/build   \n"
                         "Dockerfile\n",
    })
    # ./.env is .env (at the top only), **/ spans directories, ! re-includes below an ignored directory, a leading
    # / and trailing spaces go; .gitignore is not read when there is a .dockerignore (docker build reads none), and
    # the Dockerfile is sent even when ignored, as the Docker CLI sends it.
    assert pack(tmp_path).files == (".dockerignore", ".gitignore", "Dockerfile", "data/keep.txt", "src/env/.env",
                                    "train.py")


def test_a_dockerfile_specific_ignore_file_comes_first(tmp_path: Path) -> None:
    tree(tmp_path, {"Dockerfile": "FROM x", "Dockerfile.dockerignore": "a\n", ".dockerignore": "b\n", "a": "", "b": ""})
    assert pack(tmp_path).files == (".dockerignore", "Dockerfile", "Dockerfile.dockerignore", "b")


def test_nested_gitignores_apply_when_there_is_no_dockerignore(tmp_path: Path) -> None:
    tree(tmp_path, {
        ".gitignore": "*.log\n/out/\n!out/keep\n", "sub/.gitignore": "secret.txt\n!keep.log\n/local/\n",
        "a.log": "", "sub/b.log": "", "sub/keep.log": "", "secret.txt": "", "sub/secret.txt": "",
        "sub/deep/secret.txt": "", "local/x": "", "sub/local/x": "", "out/keep": "", "sub/out/y": "",
        "Dockerfile": "FROM x",
    })
    # A pattern is relative to its .gitignore's directory (and matches below it unless anchored with /), a deeper
    # file overrides a shallower one (!keep.log), and nothing comes back from under an ignored directory (out/keep).
    assert pack(tmp_path).files == (".gitignore", "Dockerfile", "local/x", "secret.txt", "sub/.gitignore",
                                    "sub/keep.log", "sub/out/y")


def test_symlinks_are_not_followed_and_are_reported(tmp_path: Path) -> None:
    outside = tree(tmp_path / "outside", {"id_rsa": "PRIVATE KEY", "creds/token": "TOKEN"})
    source = tree(tmp_path / "src", {"Dockerfile": "FROM x", "main.py": "print()"})
    (source / "key").symlink_to(outside / "id_rsa")
    (source / "creds").symlink_to(outside / "creds", target_is_directory=True)
    packed = pack(source)
    assert packed.files == ("Dockerfile", "main.py") and packed.skipped == ("creds", "key")
    with tarfile.open(fileobj=packed.file, mode="r:gz") as tar:
        contents = b"".join(tar.extractfile(member).read() for member in tar.getmembers())  # type: ignore[union-attr]
    assert b"PRIVATE KEY" not in contents and b"TOKEN" not in contents


def test_a_pattern_docker_refuses_is_an_error(tmp_path: Path) -> None:
    tree(tmp_path, {"Dockerfile": "FROM x", ".dockerignore": "[x-]\n"})
    with pytest.raises(CliError) as refused:
        pack(tmp_path)
    assert refused.value.code == Exit.USAGE and ".dockerignore" in str(refused.value)


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
    with tarfile.open(fileobj=packed.file, mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == [".gitignore", "Dockerfile", "run.sh"] == list(packed.files)
    assert members["run.sh"].mode == 0o755 and members["Dockerfile"].mode == 0o644
    assert {m.mtime for m in members.values()} == {0} and {m.uid for m in members.values()} == {0}


def test_a_large_context_is_packed_in_bounded_memory_with_its_md5_taken_on_the_way(tmp_path: Path) -> None:
    """8 MiB of incompressible weights in the context: the tarball goes to a temporary file, never whole into memory,
    and its MD5 and size are those of the bytes written."""
    tree(tmp_path, {"Dockerfile": "FROM x"})
    (tmp_path / "weights.bin").write_bytes(random.Random(0).randbytes(8 << 20))
    tracemalloc.start()
    try:
        packed = pack(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert packed.size > 8 << 20 and peak < 2 << 20, f"peak {peak:,} bytes"
    packed.file.seek(0)
    data = packed.file.read()
    assert (packed.size, packed.md5) == (len(data), hashlib.md5(data).hexdigest())
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getmember("weights.bin").size == 8 << 20
