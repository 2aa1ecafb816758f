"""The SSML parser and its span kinds (issue 33), pure: spans over the text as sent, what is not applied, errors that
name where, limits before the work; `<say-as>` read by our rules in Malay, English and Chinese; streamed SSML cut
into pieces that cover every character once."""

from __future__ import annotations

import pytest

from app.text.document import readings
from app.text.normalizer import Normalizer
from app.text.options import TextOptions
from app.text.segmenter import iter_document_segments
from app.text.ssml import SsmlError, SsmlLimits, break_seconds, language_of, looks_like_ssml, parse_ssml
from app.text.ssml_stream import SsmlStream


def spoken(normalizer: Normalizer, ssml: str, language: str = "auto") -> list[str]:
    doc = parse_ssml(ssml).document
    segments = iter_document_segments(doc, max_chars=300, first_max_chars=300)
    return [normalizer.speak(readings(s), TextOptions(language=language)).text for s in segments]


def test_spans_name_the_text_as_sent() -> None:
    ssml = '<speak>Hi &amp; <break time="1s"/><sub alias="x">WWW</sub> <lang xml:lang="ms-MY">ya</lang></speak>'
    doc = parse_ssml(ssml)
    kinds = [(s.kind, ssml[s.start : s.end], s.language) for s in doc.document.spans]
    assert kinds == [
        ("text", "Hi &amp; ", None), ("pause", '<break time="1s"/>', None), ("sub", "WWW", None),
        ("text", " ", None), ("text", "ya", "ms"),
    ]  # fmt: skip
    assert doc.ignored == ()


def test_plain_text_with_a_less_than_is_not_ssml() -> None:
    assert not looks_like_ssml("if a < b then <b>bold</b>")
    assert looks_like_ssml('  <?xml version="1.0"?><speak>x</speak>') and looks_like_ssml("<speak>x</speak>")
    assert not looks_like_ssml("<speaker>x</speaker>")


@pytest.mark.parametrize(
    ("attrs", "seconds"),
    [({"time": "500ms"}, 0.5), ({"time": "1.5s"}, 1.5), ({"strength": "x-strong"}, 1.25), ({}, 0.75),
     ({"time": "2s", "strength": "none"}, 2.0)],  # fmt: skip
)
def test_break_lengths(attrs: dict, seconds: float) -> None:
    assert break_seconds(attrs) == seconds


def test_a_break_over_ten_seconds_is_cut_and_named() -> None:
    doc = parse_ssml('<speak>a<break time="25s"/>b</speak>')
    assert doc.document.spans[1].attrs["seconds"] == "10.0" and doc.ignored == ("break@time>10s",)


def test_languages() -> None:
    assert [language_of(t) for t in ("en-US", "ms_MY", "zh-Hans-CN", "cmn", "fr-FR")] == ["en", "ms", "zh", "zh", None]
    assert parse_ssml('<speak xml:lang="fr-FR">x</speak>').ignored == ("speak@xml:lang=fr-FR",)


@pytest.mark.parametrize(
    ("ssml", "line", "column"),
    [("<speak>Hi <b>x</speak>", 1, 17), ("<speak>\n  <p>One\n</speak>", 3, 3), ("a <break time='x'/>", 1, 3)],
)
def test_errors_name_the_line_and_column(ssml: str, line: int, column: int) -> None:
    with pytest.raises(SsmlError) as info:
        parse_ssml(ssml)
    assert (info.value.line, info.value.column) == (line, column)


def test_limits_are_checked_before_parsing() -> None:
    with pytest.raises(SsmlError, match="characters"):
        parse_ssml("<speak>" + "x" * 200 + "</speak>", SsmlLimits(max_chars=100))
    with pytest.raises(SsmlError, match="elements"):
        parse_ssml("<speak>" + "<s/>" * 30 + "</speak>", SsmlLimits(max_elements=10))
    with pytest.raises(SsmlError, match="deeper"):
        parse_ssml("<speak>" + "<s>" * 5 + "</s>" * 5 + "</speak>", SsmlLimits(max_depth=4))


@pytest.mark.parametrize(
    "hostile",
    [
        '<!DOCTYPE speak [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><speak>&b;</speak>',
        '<!DOCTYPE speak SYSTEM "http://127.0.0.1:9/speak.dtd"><speak>x</speak>',
        '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]><speak>&x;</speak>',
    ],
)
def test_dtds_entities_and_external_references_are_refused(hostile: str) -> None:
    with pytest.raises(SsmlError, match="refused"):
        parse_ssml(hostile)


@pytest.mark.parametrize(
    ("language", "ssml", "said"),
    [
        ("en", '<say-as interpret-as="cardinal">2024</say-as> and <say-as interpret-as="digits">2024</say-as>',
         "two thousand and twenty four and two zero two four"),
        ("ms", 'Nombor <say-as interpret-as="cardinal">2024</say-as> dan <say-as interpret-as="digits">12</say-as>',
         "Nombor dua ribu dua puluh empat dan satu dua"),
        ("zh", '数字<say-as interpret-as="cardinal">2024</say-as>', "数字两千零二十四"),
        ("en", 'You are <say-as interpret-as="ordinal">3</say-as>', "You are third"),
        ("ms", 'Anda <say-as interpret-as="ordinal">3</say-as>', "Anda ketiga"),
        ("zh", '你是<say-as interpret-as="ordinal">3</say-as>名', "你是第三名"),
        ("en", 'On <say-as interpret-as="date" format="mdy">12/03/2024</say-as>',
         "On the third of December twenty twenty four"),
        ("ms", 'Pada <say-as interpret-as="date" format="ymd">2024/12/03</say-as>',
         "Pada tiga Disember dua ribu dua puluh empat"),
        ("en", 'Code <say-as interpret-as="characters">AB12</say-as>', "Code A B one two"),
    ],
)
def test_say_as_goes_through_our_rules_in_three_languages(
    normalizer: Normalizer, language: str, ssml: str, said: str
) -> None:
    text = spoken(normalizer, f'<speak xml:lang="{language}">{ssml}</speak>')
    assert text == [said]


def test_the_words_of_a_say_as_name_its_text(normalizer: Normalizer) -> None:
    ssml = '<speak xml:lang="en">Call <say-as interpret-as="digits">42</say-as> now</speak>'
    [seg] = iter_document_segments(parse_ssml(ssml).document, max_chars=300, first_max_chars=300)
    out = normalizer.speak(readings(seg), TextOptions())
    assert [(w, ssml[a:b]) for w, _, _, (a, b) in out.words()] == [("Call", "Call"), ("four", "4"), ("two", "2"),
                                                                   ("now", "now")]  # fmt: skip


def test_a_streamed_document_is_cut_into_pieces_that_cover_it_once() -> None:
    ssml = '<speak>Hi <break time="1s"/> x <say-as interpret-as="digits">12</say-as> a < b<p>y</p></speak>'
    for step in (1, 3, 7, len(ssml)):
        stream = SsmlStream()
        pieces = [p for i in range(0, len(ssml), step) for p in stream.push(ssml[i : i + step])] + stream.end()
        assert sum(p.size for p in pieces) == len(ssml)
        kinds = [p.kind for p in pieces if p.kind != "text"]
        assert kinds == ["skip", "element", "element", "boundary", "boundary", "skip"]


def test_a_streamed_element_is_bounded() -> None:
    stream = SsmlStream(max_chars=50)
    stream.push("<prosody rate='slow'>")
    with pytest.raises(SsmlError, match="still open"):
        stream.push("x" * 60)


def test_a_chinese_cardinal_with_no_language_named_is_read_as_one_number(normalizer: Normalizer) -> None:
    """With the language left to detection, a say-as cardinal is written grouped ("2,024") for the rules of
    whatever language the sentence is: the Chinese rules read the group as one number, not a code "024"."""
    assert spoken(normalizer, '<speak>数字<say-as interpret-as="cardinal">2024</say-as>个</speak>') == ["数字两千零二十四个"]
