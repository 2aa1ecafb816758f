"""A change that breaks the image fails here, with the builder's reason: a COPY of a path that moved.

The variant is the real Dockerfile with one line changed, built from the real context on the cached layers (the
steps before the change are not rebuilt), under a throwaway tag.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tools import images

# the first test of a session builds every image (about 10 min from scratch on 2 cores): more than the default
pytestmark = pytest.mark.timeout(2400)


def test_a_copy_of_a_moved_path_fails_the_build(built: dict, tmp_path: Path) -> None:
    spec = built["tts-api"]
    source = spec.dockerfile.read_text()
    assert "COPY app ./app" in source
    variant = tmp_path / "Dockerfile"
    variant.write_text(source.replace("COPY app ./app", "COPY application ./app"))
    broken = dataclasses.replace(spec, dockerfile=variant, service="tts-api-broken")
    with pytest.raises(images.ImageError) as failure:
        images.build(broken, tag="streamable-tts-api:broken-copy")
    message = str(failure.value)
    assert "building streamable-tts-api:cpu from Dockerfile failed" in message
    assert "application" in message and "no such file or directory" in message
    assert images.inspect_image("streamable-tts-api:broken-copy") is None
