"""The bucket side of status and deletion, against fake-gcs-server with the real client."""
from google.cloud import storage

from modelplane.storage import FIRST_FILES, ArtifactStore, human_size


def put(bucket: storage.Bucket, name: str, size: int) -> None:
    bucket.blob(name).upload_from_string(b"x" * size)


def test_summary_counts_sizes_and_lists_the_first_files(bucket: storage.Bucket) -> None:
    for i in range(FIRST_FILES + 5):
        put(bucket, f"ml/models/m/v1/shard-{i:03}.bin", 1000)
    put(bucket, "ml/models/m/v1/config.json", 24)
    put(bucket, "ml/models/m/v2/other.bin", 5)  # another run: not counted
    put(bucket, "ml/models/mm/v1/x.bin", 7)  # another model sharing the name prefix: not counted
    summary = ArtifactStore(bucket.client, bucket.name).summarize("ml/models/m/v1/")
    assert summary.count == FIRST_FILES + 6
    assert summary.bytes == (FIRST_FILES + 5) * 1000 + 24
    assert summary.size == human_size(summary.bytes) == "24.4Ki"
    assert summary.url == f"gs://{bucket.name}/ml/models/m/v1/"
    assert len(summary.files) == FIRST_FILES and summary.files[0] == "config.json"


def test_empty_prefix_is_an_empty_summary(bucket: storage.Bucket) -> None:
    summary = ArtifactStore(bucket.client, bucket.name).summarize("ml/datasets/none/v1/")
    assert (summary.count, summary.bytes, summary.size, summary.files) == (0, 0, "0", [])


def test_delete_removes_only_the_object_root(bucket: storage.Bucket) -> None:
    put(bucket, "ml/datasets/d/v1/a", 1)
    put(bucket, "ml/datasets/d/v2/b", 1)
    put(bucket, "ml/datasets/dd/v1/keep", 1)
    assert ArtifactStore(bucket.client, bucket.name).delete("ml/datasets/d/") == 2
    assert [b.name for b in bucket.client.list_blobs(bucket)] == ["ml/datasets/dd/v1/keep"]
