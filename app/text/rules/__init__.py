"""Rewrite rules: each is a function `(text, reader) -> text` that speaks one kind of written token."""

import re

has_digit = re.compile(r"[0-9]").search

# A code, not a quantity: "OTP 482913", "nombor akaun 1234567", "Kod pengesahan anda ialah 123-456" are read digit by
# digit.
CODE_WORDS = frozenset(
    (  # noqa: SIM905
        "otp tac pin code codes kod ref reference rujukan akaun account id tracking invois invoice order pesanan "
        "booking tempahan passport pasport siri serial resit receipt no number nombor call dial hubungi "
        "telefon tel phone hotline talian ending berakhir pengesahan verification postcode poskod card kad digits digit"
    ).split()
)
_CODE_CONTEXT = re.compile(r"([A-Za-z]+)\W+(?:(?:is|ialah|adalah|anda|your|saya|my|ini|the|with|dengan|:)\W*){0,2}$")


def code_named_before(text: str, start: int, words: frozenset[str] = CODE_WORDS) -> bool:
    """Whether the word before `text[start:]` (past "is", "anda", "your"...) names a code: one of `words`."""
    before = _CODE_CONTEXT.search(text, max(0, start - 40), start)
    return before is not None and before.group(1).lower() in words
