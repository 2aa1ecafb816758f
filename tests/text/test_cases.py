from __future__ import annotations

import pytest

from app.text.normalizer import Normalizer
from tests.text.cases import CASES


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 150
    assert len({c.text for c in CASES}) == len(CASES), "duplicate inputs in the table"


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}:{c.text[:40]}" for c in CASES])
def test_case(normalizer: Normalizer, case) -> None:
    assert normalizer.normalize(case.text) == case.expected
