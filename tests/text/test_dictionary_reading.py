"""A request's pronunciation dictionaries read with the real normalizer (issue 33, item 1): applied before its
rules and the bundled overrides (a dictionary's "Dr. Tan" beats the built-in "Dr." -> "doktor"), the alias then
read by the rules like any text (its numbers in words), each spoken word mapped back to what was sent; without a
dictionary, exactly the text of today."""

from __future__ import annotations

from app.service.text_input import TextInput
from app.text.dictionary import Dictionary, Rule
from app.text.normalizer import Normalizer
from app.text.options import TextOptions

SENT = "Sila jumpa Dr. Tan di Blok C pada pukul 3 petang."


def reader(normalizer: Normalizer) -> TextInput:
    return TextInput(normalizer, 5000)


def options(*rules: Rule) -> TextOptions:
    return TextOptions(language="ms", dictionaries=(Dictionary("d", "v", rules),))


async def test_without_a_dictionary_the_text_is_todays(normalizer: Normalizer) -> None:
    text_input = reader(normalizer)
    try:
        spoken = await text_input.speak(SENT, TextOptions(language="ms"))
        assert spoken.text == normalizer.normalize(SENT, language="ms")
        assert "doktor Tan" in spoken.text  # the bundled overrides' "Dr."
    finally:
        text_input.close()


async def test_the_dictionary_comes_before_the_rules_and_the_overrides(normalizer: Normalizer) -> None:
    text_input = reader(normalizer)
    try:
        spoken = await text_input.speak(
            SENT, options(Rule("Dr. Tan", alias="Doctor Tan Wei Ming"), Rule("Blok C", alias="Blok 3C"))
        )
    finally:
        text_input.close()
    assert "Doctor Tan Wei Ming" in spoken.text and "doktor" not in spoken.text
    assert "Blok tiga C" in spoken.text  # the alias is read by the rules: its number in Malay words
    named = [(w, SENT[slice(*src)]) for w, _, _, src in spoken.words() if src is not None]
    assert ("Wei", "Dr. Tan") in named  # a word the alias brought names the string it replaced
    at = named.index(("Blok", "Blok"))  # a word the alias kept keeps its place, the one it changed names its own
    assert named[at + 1 : at + 3] == [("tiga", "C"), ("C", "C")]
    assert named[-2:] == [("tiga", "3"), ("petang.", "petang.")]
