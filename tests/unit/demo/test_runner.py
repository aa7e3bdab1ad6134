"""The local Job runner's naming: an image's name without its tag or digest."""
from __future__ import annotations

from modelplane.demo.runner import image_name


def test_image_names_drop_tag_and_digest() -> None:
    assert image_name("reg:5000/team/loader:1.2@sha256:" + "a" * 64) == "reg:5000/team/loader"
    assert image_name("reg:5000/team/loader") == "reg:5000/team/loader"
    assert image_name("loader:latest") == "loader"
