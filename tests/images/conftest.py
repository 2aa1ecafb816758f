"""The images of docker-compose-cpu.yaml, built once per session with buildah on the Debian stand-in base
(tools/images.py; layers cached in .cache/images), and the dev vLLM the API image is run against."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.integration.conftest import vllm_url  # noqa: F401  (the shared dev vLLM: reused, or started)
from tools import images

NEEDS = ("buildah", "debootstrap", "docker-compose", "unshare", "setpriv", "nsenter", "chroot")


@pytest.fixture(scope="session")
def built() -> dict[str, images.BuildSpec]:
    """Every build section of docker-compose-cpu.yaml, built (a second session reuses every cached layer)."""
    missing = [tool for tool in NEEDS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"not installed: {' '.join(missing)} (`make system-deps` installs them)", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("building and running images without an engine needs root (chroot, mounts)", pytrace=False)
    try:
        times = images.build_all(log=print)
    except images.ImageError as exc:
        pytest.fail(str(exc), pytrace=False)
    print("image build seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    return images.build_specs(images.compose_config())
