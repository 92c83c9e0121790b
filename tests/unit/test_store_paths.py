"""Store paths: what ``contained`` lets through and refuses, for the local disk and the S3 spool alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from civicam.storage.backend import contained, spool_path

ROOT = "/srv/civicam/recordings"


@pytest.mark.parametrize(("rel", "inside"), [
    ("cam00000007/2026/12/01/10/x.mp4", "cam00000007/2026/12/01/10/x.mp4"),
    ("cam00000007/./x.mp4.partial", "cam00000007/x.mp4.partial"),
    ("a/../b.mp4", "b.mp4"),  # normalised, still inside
    ("../outside.mp4", None),
    ("cam00000001/../../x.mp4", None),
    ("../recordings-other/x.mp4", None),  # a sibling whose name starts like the root
    ("/etc/passwd", None),
    ("", None),  # the root itself is no file of the store
    (".", None),
])
def test_contained(rel: str, inside: str | None) -> None:
    if inside is None:
        with pytest.raises(ValueError, match="escapes the store"):
            contained(ROOT, rel)
    else:
        assert contained(ROOT, rel) == f"{ROOT}/{inside}"


def test_spool_path_makes_the_folder_and_refuses_what_contained_refuses(tmp_path: Path) -> None:
    root = os.path.realpath(tmp_path)
    path = spool_path(root, "cam00000003/2026/12/01/x.mp4.partial")
    assert path == os.path.join(root, "cam00000003", "2026", "12", "01", "x.mp4.partial")
    assert os.path.isdir(os.path.dirname(path)) and not os.path.exists(path)
    with pytest.raises(ValueError):
        spool_path(root, "../x.mp4.partial")
    assert not os.path.exists(os.path.join(os.path.dirname(root), "x.mp4.partial"))
