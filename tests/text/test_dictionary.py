"""Pronunciation dictionaries, the pure part (app/text/dictionary.py): rules from ElevenLabs' JSON, applied in
order with the first dictionary winning, case and word boundaries, the map back to the text as sent, phoneme rules
met but not applied, PLS in (hardened) and out, and the limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.text.dictionary import (
    LIMITS,
    Dictionary,
    DictionaryError,
    Rule,
    apply,
    merged,
    parse_pls,
    phonemes_met,
    removed,
    rules_from_json,
    write_pls,
)
from app.text.offsets import Tracker, tracking


def d(*rules: Rule, id: str = "d1") -> Dictionary:
    return Dictionary(id, "v1", tuple(rules))


def alias(s: str, a: str, **kw: bool) -> Rule:
    return Rule(s, "alias", alias=a, **kw)


def test_alias_rules_replace_whole_words_in_their_case_by_default() -> None:
    dic = d(alias("KL", "Kuala Lumpur"))
    assert apply([dic], "KL and KLCC and kl") == "Kuala Lumpur and KLCC and kl"


def test_case_insensitive_and_inside_words() -> None:
    dic = d(alias("tomato", "tomahto", case_sensitive=False, word_boundaries=False))
    assert apply([dic], "Tomatoes, TOMATO.") == "tomahtoes, tomahto."


def test_the_first_dictionary_wins_and_the_longest_string_within_one() -> None:
    first = d(alias("Dr.", "Doctor"), alias("Dr. Tan", "Doktor Tan Sri"), id="a")
    second = d(alias("Dr.", "Drive"), alias("Tan", "Tarn"), id="b")
    assert apply([first, second], "Dr. Tan met Dr. Lee on Tan Road") == "Doktor Tan Sri met Doctor Lee on Tarn Road"
    assert apply([second, first], "Dr. Lee") == "Drive Lee"


def test_what_a_rule_put_in_is_not_read_by_another() -> None:
    dic = d(alias("A", "B"), alias("B", "C"))
    assert apply([dic], "A B") == "B C"


def test_the_alias_maps_back_to_the_string_it_replaced() -> None:
    text = "Call Dr. Tan now"
    tracker = Tracker(text)
    with tracking(tracker):
        out = apply([d(alias("Dr. Tan", "Doktor Tan"))], text)
    mapped = tracker.mapped()
    assert out == mapped.text == "Call Doktor Tan now"
    words = {w: src for w, _, _, src in mapped.words()}
    assert words["Doktor"] == (5, 8) and words["Tan"] == (9, 12)  # a word the alias kept keeps its own place
    assert words["Call"] == (0, 4) and words["now"] == (13, 16)


def test_an_alias_with_no_word_in_common_names_the_whole_string() -> None:
    tracker = Tracker("in KL.")
    with tracking(tracker):
        apply([d(alias("KL", "Kuala Lumpur"))], "in KL.")
    assert [(w, src) for w, _, _, src in tracker.mapped().words()] == [
        ("in", (0, 2)),
        ("Kuala", (3, 5)),
        ("Lumpur.", (3, 6)),
    ]


def test_regex_characters_are_literal() -> None:
    assert apply([d(alias("a.b", "x", word_boundaries=False))], "a.b axb") == "x axb"


def test_phoneme_rules_are_left_as_written_and_reported() -> None:
    tomato = Rule("tomato", "phoneme", phoneme="/tə'meɪtoʊ/", alphabet="ipa")
    dic = d(tomato, alias("KL", "Kuala Lumpur"))
    assert apply([dic], "tomato in KL") == "tomato in Kuala Lumpur"
    assert phonemes_met([dic], "tomato in KL, tomato") == [tomato]
    assert phonemes_met([dic], "potato in KL") == []
    # an alias rule of an earlier dictionary wins the place: the phoneme rule is not met there
    assert phonemes_met([d(alias("tomato", "tomahto"), id="x"), dic], "tomato") == []


def test_rules_from_elevenlabs_json_with_its_defaults() -> None:
    rules = rules_from_json([
        {"type": "alias", "string_to_replace": "KL", "alias": "Kuala Lumpur"},
        {"type": "phoneme", "string_to_replace": "Tan", "phoneme": "tæn", "alphabet": "ipa", "case_sensitive": False},
        {"type": "alias", "string_to_replace": "KL", "alias": "K L", "word_boundaries": False},
    ])  # fmt: skip
    assert rules == (
        Rule("KL", "alias", alias="K L", word_boundaries=False),  # the later rule for a string replaced it
        Rule("Tan", "phoneme", phoneme="tæn", alphabet="ipa", case_sensitive=False),
    )
    assert [Rule.from_json(r.to_json()) for r in rules] == list(rules)


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ("KL", "must be a list"),
        ([{"type": "alias", "string_to_replace": "KL"}], "rules[0].alias"),
        ([{"type": "stress", "string_to_replace": "KL", "alias": "x"}], "rules[0].type"),
        ([{"type": "alias", "string_to_replace": " ", "alias": "x"}], "string_to_replace"),
        ([{"type": "alias", "string_to_replace": "x" * 201, "alias": "y"}], "over 200"),
        ([{"type": "alias", "string_to_replace": "a", "alias": "b\x00"}], "control character"),
        ([{"type": "alias", "string_to_replace": "a", "alias": "b", "case_sensitive": "no"}], "true or false"),
        ([{"type": "alias", "string_to_replace": f"w{i}", "alias": "b"} for i in range(LIMITS.rules + 1)], "limit"),
    ],
)
def test_bad_rules_name_what_is_wrong(items: object, says: str) -> None:
    with pytest.raises(DictionaryError, match="rules") as err:
        rules_from_json(items)
    assert says in err.value.message


def test_add_and_remove_keep_order_and_replace_by_string() -> None:
    one, two = alias("a", "1"), alias("b", "2")
    assert merged((one, two), [alias("a", "3"), alias("c", "4")]) == (alias("a", "3"), two, alias("c", "4"))
    assert removed((one, two), ["a", "zzz"]) == (two,)


PLS = b"""<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" alphabet="ipa" xml:lang="en-GB">
  <lexeme><grapheme>KL</grapheme><grapheme>K.L.</grapheme><alias>Kuala Lumpur</alias></lexeme>
  <lexeme><grapheme>tomato</grapheme><phoneme>t\xc9\x99\xcb\x88m\xc9\x91\xcb\x90t\xc9\x99\xca\x8a</phoneme></lexeme>
  <lexeme><grapheme>Nguyen</grapheme><phoneme alphabet="x-sampa">w_in</phoneme></lexeme>
  <lexeme><grapheme>nothing</grapheme></lexeme>
</lexicon>"""


def test_a_pls_file_gives_its_rules_and_writes_back_the_same() -> None:
    rules = parse_pls(PLS)
    assert rules == (
        Rule("KL", "alias", alias="Kuala Lumpur"),
        Rule("K.L.", "alias", alias="Kuala Lumpur"),
        Rule("tomato", "phoneme", phoneme="təˈmɑːtəʊ", alphabet="ipa"),
        Rule("Nguyen", "phoneme", phoneme="w_in", alphabet="x-sampa"),
    )
    assert parse_pls(write_pls(rules)) == rules
    odd = (Rule("<a & b>", "alias", alias='"q" & <r>'),)
    assert parse_pls(write_pls(odd)) == odd


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (
            b'<?xml version="1.0"?><!DOCTYPE lexicon [<!ENTITY x "KL">]><lexicon><lexeme><grapheme>&x;</grapheme>'
            b"<alias>y</alias></lexeme></lexicon>",
            "DTDs",
        ),
        (b'<!DOCTYPE lexicon SYSTEM "file:///etc/passwd"><lexicon/>', "DTDs"),
        (b"<lexicon><lexeme><grapheme>KL</grapheme>", "not well-formed XML at line 1"),
        (b"<speak>hello</speak>", "root element is <speak>"),
        (b"<lexicon>" + b" " * LIMITS.file_bytes + b"</lexicon>", "bytes; the limit"),
    ],
)
def test_hostile_or_broken_pls_is_refused(data: bytes, says: str) -> None:
    with pytest.raises(DictionaryError) as err:
        parse_pls(data)
    assert says in err.value.message and err.value.param == "file"


FRAGMENTS = [
    '<?xml version="1.0"?>', "<!DOCTYPE lexicon [", '<!ENTITY e "KL">', '<!ENTITY x SYSTEM "file:///etc/passwd">', "]>",
    "&e;", "&x;", "&amp;", "<lexicon>", '<lexicon xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">', "</lexicon>",
    "<lexeme>", "</lexeme>", "<grapheme>", "</grapheme>", "<alias>", "</alias>", '<phoneme alphabet="ipa">',
    "</phoneme>", "KL", " ", "\x00", "\ud7ff", "<", ">", '"', "]]>", "<![CDATA[", "<?pi x?>", "<!-- c -->",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40) | st.binary(max_size=400).map(lambda b: [b.decode("latin-1")]))
def test_any_pls_input_is_rules_or_a_clear_refusal(parts: list[str]) -> None:
    """Random and hostile XML: rules within the limits, or a DictionaryError naming the file; nothing else."""
    try:
        rules = parse_pls("".join(parts).encode("utf-8", "surrogatepass"))
    except DictionaryError as exc:
        assert exc.param == "file" and exc.message.startswith("file")
    else:
        assert len(rules) <= LIMITS.rules
        assert all(0 < len(r.string_to_replace) <= LIMITS.string_chars for r in rules)
        assert all(r.type == "alias" or r.phoneme for r in rules)


def _regex_reference(dictionaries: list[Dictionary], text: str) -> str:
    """What the rules mean, written as one regex alternation (slow with thousands of rules: the matcher is not)."""
    import re

    order = [r for d in dictionaries for r in sorted(d.rules, key=lambda r: -len(r.string_to_replace))]
    if not order:
        return text

    def alt(r: Rule) -> str:
        body = re.escape(r.string_to_replace)
        body = body if r.case_sensitive else f"(?i:{body})"
        return f"((?<!\\w){body}(?!\\w))" if r.word_boundaries else f"({body})"

    pattern = re.compile("|".join(alt(r) for r in order))

    def repl(m: re.Match[str]) -> str:
        rule = order[(m.lastindex or 1) - 1]
        return rule.alias if rule.type == "alias" else m.group()

    return pattern.sub(repl, text)


WORDS = st.sampled_from(["KL", "kl", "Dr.", "Dr. Tan", "Tan", "tan", "a.b", "KLCC", "x", "#KL", "İz", "Ab"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(WORDS, st.booleans(), st.booleans(), st.booleans()), max_size=6), min_size=1, max_size=3
    ),
    st.lists(st.one_of(WORDS, st.sampled_from([" ", ",", ".", "-", "_", "9"])), max_size=30),
)
def test_the_matcher_means_what_the_regex_alternation_means(specs: list, words: list[str]) -> None:
    dictionaries = [
        Dictionary(f"d{n}", "v", merged((), [
            Rule(s, "phoneme", phoneme="p", alphabet="ipa", case_sensitive=cs, word_boundaries=wb) if ph
            else Rule(s, "alias", alias=f"<{n}:{s}>", case_sensitive=cs, word_boundaries=wb)
            for s, cs, wb, ph in spec
        ]))
        for n, spec in enumerate(specs)
    ]  # fmt: skip
    text = "".join(words)
    assert apply(dictionaries, text) == _regex_reference(dictionaries, text)
