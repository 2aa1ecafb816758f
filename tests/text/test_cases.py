from __future__ import annotations

from collections import Counter

import pytest

from app.text.normalizer import Normalizer
from tests.text.cases import CASES as BASE_CASES
from tests.text.cases_contact_centre import CONTACT_CASES
from tests.text.cases_issue12 import ISSUE12_CASES
from tests.text.cases_issue33 import ISSUE33_CASES

CASES = BASE_CASES + ISSUE12_CASES + ISSUE33_CASES + CONTACT_CASES
# Every kind of misreading named in issue 12 has its own category with several cases.
ISSUE12_KINDS = ("unit", "lang", "hijri", "range", "datefrac", "roman", "abbr", "chat", "emoji", "zh", "mixed")


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 600
    assert len({c.text for c in CASES}) == len(CASES), [t for t, n in Counter(c.text for c in CASES).items() if n > 1]
    assert sum(c.category.startswith("mixed") for c in CASES) >= 150  # code-switched, as Malaysians write
    assert sum(c.category == "zh" for c in CASES) >= 60
    for kind in ISSUE12_KINDS:
        assert sum(c.category.split("-")[0] == kind for c in CASES) >= 5, kind
    # issue 33 item 4: each class of misreading, in Malay and English, with sentences that must not change
    for category in ("names-ms", "names-en", "idno-ms", "idno-en", "keep-en"):
        assert sum(c.category == category for c in ISSUE33_CASES) >= 5, category
    assert sum(c.category.startswith("chat") for c in ISSUE33_CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}:{c.text[:40]}" for c in CASES])
def test_case(normalizer: Normalizer, case) -> None:
    assert normalizer.normalize(case.text) == case.expected
