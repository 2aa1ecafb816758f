from __future__ import annotations

import pytest

from app.text.normalizer import Normalizer


@pytest.fixture(scope="session")
def normalizer() -> Normalizer:
    """One normalizer for the whole run: loading malaya takes seconds."""
    n = Normalizer()
    n.warmup()
    return n
