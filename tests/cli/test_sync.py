"""Two-way workspace sync against fake-gcs-server: edits and deletions both ways, and a conflict that loses nothing."""

from pathlib import Path

from google.cloud import storage

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
