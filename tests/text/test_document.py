"""Documents of spans: a span kind defined here (not in app/) goes through the segmenter, the normalizer, the
timings and ElevenLabs' alignment as sent, with nothing else changed (issue 30: a new span type is one change in
one place). Segments keep their source offsets, streamed or whole."""

from __future__ import annotations

import re

from app.prompts import speech_prompt
from app.service.requests import SpeechRequest
from app.service.segment_policy import RequestAccounting
from app.service.segments import SegmentStream
from app.service.sent_timing import segment_as_sent, sent_timings
from app.service.timeline import Timeline
from app.service.timing import SegmentTimings, elevenlabs_http_alignment, estimated
from app.text.document import SPAN_TYPES, Span, SpanType, TextDocument, readings, span_type
from app.text.normalizer import Normalizer
from app.text.offsets import Mapped
from app.text.options import TextOptions
from app.text.segmenter import TextSegmenter, iter_document_segments, whole_text_segments
from tests.unit.test_longform import Script, service_for


@span_type
class Spelled(SpanType):
    """Read letter by letter, never cut inside, a segment of its own, no rules applied (a test's kind)."""

    name = "test-spelled"
    atomic = True
    breaks = True
    normalized = False

    def reads(self, span: Span, text: Mapped) -> Mapped:
        letters = [(c, s) for c, s in zip(text.text, text.spans, strict=True) if not c.isspace()]
        return Mapped.join([Mapped(c, (s,)) for c, s in letters], " ")


SOURCE = "Dr. Tan owes RM5.50 on 3/4. Your code is AB 12 Thank you 3 times."


def document() -> TextDocument:
    code = SOURCE.index("AB 12")
    return TextDocument(
        SOURCE,
        (Span("text", 0, code), Span("test-spelled", code, code + 5), Span("text", code + 5, len(SOURCE), "en")),
    )


def test_the_kind_is_registered_in_one_place() -> None:
    assert SPAN_TYPES["test-spelled"].atomic and "text" in SPAN_TYPES


def test_the_segmenter_cuts_at_the_span_and_never_inside_it() -> None:
    segments = list(iter_document_segments(document(), max_chars=12, first_max_chars=8))
    spelled = [s for s in segments if any(sp.kind == "test-spelled" for sp in s.spans)]
    assert [str(s) for s in spelled] == ["AB 12"]  # longer than nothing; cut from nothing else
    for seg in segments:  # every character names its source character
        assert all(SOURCE[o] == c or c == " " for c, o in zip(seg, seg.offsets, strict=True))
    assert "".join("".join(s.split()) for s in segments) == "".join(SOURCE.split())  # nothing lost


def test_a_plain_document_is_cut_as_plain_text_is() -> None:
    plain = TextDocument.plain(SOURCE)
    assert list(iter_document_segments(plain, max_chars=20, first_max_chars=10)) == whole_text_segments(
        SOURCE, max_chars=20, first_max_chars=10
    )


def test_the_normalizer_reads_the_kind_and_maps_it_back(normalizer: Normalizer) -> None:
    segments = list(iter_document_segments(document(), max_chars=200, first_max_chars=200))
    assert [s.spans[0].kind for s in segments] == ["text", "test-spelled", "text"]
    spoken = [normalizer.speak(readings(s), TextOptions()) for s in segments]
    assert spoken[1].text == "A B 1 2"
    assert [SOURCE[a:b] for _, _, _, (a, b) in spoken[1].words()] == ["A", "B", "1", "2"]
    word, _, _, source = spoken[0].words()[0]
    assert word in ("doktor", "doctor") and SOURCE[source[0] : source[1]] == "Dr."
    assert spoken[2].text == "Thank you three times."  # its language hint, "en"


def test_timings_and_alignment_name_the_source(normalizer: Normalizer) -> None:
    seg = list(iter_document_segments(document(), max_chars=200, first_max_chars=200))[1]
    spoken = normalizer.speak(readings(seg), TextOptions())
    timed = estimated(spoken.text, start=0, end=7000, rate=1000).named(spoken.spans)
    assert [SOURCE[w.source[0] : w.source[1]] for w in timed.words()] == ["A", "B", "1", "2"]
    sent = segment_as_sent(seg, timed)
    assert sent.text == "AB 12"
    words = {w.text: w for w in timed.words()}
    assert sent.starts[seg.index("1")] == words["1"].start and sent.ends[seg.index("2")] == 7000


def test_elevenlabs_alignment_is_exact_over_normalized_numbers_and_abbreviations(normalizer: Normalizer) -> None:
    text = "Dr. Tan owes RM5.50 on 3/4"
    [seg] = whole_text_segments(text, max_chars=200, first_max_chars=200)
    spoken = normalizer.speak(readings(seg), TextOptions(language="en"))
    timed = estimated(spoken.text, start=0, end=48_000, rate=24_000).named(spoken.spans)
    sent = sent_timings(text, None, timed)
    a = elevenlabs_http_alignment(sent)
    assert "".join(a["characters"]) == text
    words = timed.words()
    money = [w for w in words if w.source == (text.index("RM"), text.index("RM") + 6)]
    on = next(w for w in words if w.text == "on")
    r, m5 = text.index("RM"), text.index("0 on")
    # "RM5.50" spans exactly the audio of the words it became, and "on" its own
    assert sent.starts[r] == money[0].start and sent.ends[m5] == timed.ends[spoken.text.index(" on") - 1]
    assert sent.starts[text.index(" on") + 1] == on.start
    assert sent.starts[0] == 0 and sent.ends[-1] == 48_000
    assert list(sent.starts) == sorted(sent.starts)
    # the estimate over the text as sent (today's) does not place them so
    assert estimated(text, start=0, end=48_000, rate=24_000).starts[r] != sent.starts[r]


def test_streamed_segments_know_their_offsets_across_deltas() -> None:
    seg = TextSegmenter(max_chars=30, max_wait=None)
    text = "Hello   there, friend.  How are\n you today? Fine thanks."
    out = []
    for i in range(0, len(text), 7):
        out += seg.push(text[i : i + 7], 0.0)
    out += seg.flush()
    assert " ".join(out) == " ".join(text.split())
    for s in out:
        words = re.findall(r"\S+", s)
        assert [text[a:b] for a, b in s.ranges if text[a:b].strip()] and s.offsets == tuple(sorted(s.offsets))
        assert "".join(words) == "".join(text[o] for o, c in zip(s.offsets, s, strict=True) if c != " ")
    assert out[-1].end == len(text)


def test_chinese_segments_map_through_the_spaces_put_in_and_taken_out() -> None:
    text = "你好，我是客服。请问有什么可以帮您？我们的营业时间是早上九点到晚上六点，周末休息！" * 2
    segments = whole_text_segments(text, max_chars=30, first_max_chars=12)
    assert "".join(segments) == text
    for s in segments:
        assert "".join(text[o] for o in s.offsets) == s


def test_an_empty_join_is_not_a_time(normalizer: Normalizer) -> None:
    empty = SegmentTimings.join([], 24_000)
    assert sent_timings("abc", None, empty).text == "abc"


async def test_a_document_is_spoken_through_the_segment_stream(normalizer: Normalizer) -> None:
    """The whole service path: the document cut, each segment read by its kind and prompted; the timings of the
    spelled segment name its letters in the source."""
    backend = Script()
    service = service_for(backend, stream_segment_max_chars=200, stream_first_segment_chars=200)
    service.text_input.normalizer = normalizer
    gen = SpeechRequest(input="-").resolved(service.generation, service.streaming)
    stream = SegmentStream(service, "husein", gen, use_context=False, observers=[RequestAccounting(service.metrics)])
    stream.feed.speak(document())

    class Writer:  # the source's samples as delivered
        rate = 24_000

        def position(self, source: int) -> int:
            return source

    class Estimates:  # the service's timings, without an aligner
        has_aligner = False
        segment_timings = service.timings.segment_timings

    timeline = Timeline(Estimates(), Writer())  # type: ignore[arg-type]
    async for event in stream.events():  # what the renderer feeds a timeline
        if event.kind == "audio":
            timeline.wrote(event.audio)
        elif event.kind == "started":
            timeline.started()
        elif event.kind == "done":
            await timeline.done(event.normalized, event.spoken)
    assert [c.prompt for c in backend.calls][1] == speech_prompt("husein", "A B 1 2")
    spelled = timeline.segments[1]
    assert [SOURCE[w.source[0] : w.source[1]] for w in spelled.words()] == ["A", "B", "1", "2"]
    assert stream.usage.input_chars == len(SOURCE)
