from __future__ import annotations

from pathlib import Path

import pytest

from app.align.checkpoint import save_random_aligner


@pytest.fixture(scope="session")
def tiny_aligner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny wav2vec2 CTC model with MMS's vocabulary, saved as a hub model would be."""
    return save_random_aligner(tmp_path_factory.mktemp("aligner") / "tiny-mms-fa")
