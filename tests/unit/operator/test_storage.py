"""Sizes in status as people read them."""
from modelplane.storage import human_size


def test_human_sizes() -> None:
    assert [human_size(n) for n in (0, 999, 1024, 1536, 150 * 1024**3, 3 * 1024**6)] == [
        "0", "999", "1Ki", "1.5Ki", "150Gi", "3072Pi"]
