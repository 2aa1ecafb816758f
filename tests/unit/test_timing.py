"""Word and character timings (`app/service/timing.py`) and the writer's delivered positions they rest on."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.output import AudioWriter
from app.service.timing import aligned, char_weight, elevenlabs_alignment, estimated

TEXTS = [
    "Hello there, this is a test.",
    "Harga dia lima ratus ringgit sahaja. OK, thanks!",  # Malay and English, code-switched
    "你好，我们明天见。",  # Chinese: one syllable per character
    "Saya nak order 两杯 kopi, boleh?",  # Malay, English and Chinese in one sentence
    "a",
]


def _check(t, text: str) -> None:
    assert len(t.starts) == len(t.ends) == len(text)
    assert t.start <= t.starts[0] and t.ends[-1] <= t.end
    assert all(s <= e for s, e in zip(t.starts, t.ends, strict=True))
    assert all(t.ends[i] <= t.starts[i + 1] for i in range(len(text) - 1))
    if t.source == "estimated":  # the characters tile the segment
        assert t.starts[0] == t.start and t.ends[-1] == t.end
        assert all(t.ends[i] == t.starts[i + 1] for i in range(len(text) - 1))
    words = t.words()
    assert all(t.start <= w.start <= w.end <= t.end for w in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))  # in order, no overlap


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("start,end", [(0, 24000), (12345, 12345 + 7777), (100, 100)])
def test_estimate_places_every_word_once_in_order_inside_its_segment(text: str, start: int, end: int) -> None:
    t = estimated(text, start=start, end=end, rate=24000)
    _check(t, text)
    assert t.source == "estimated"
    spoken = [w.text for w in t.words()]
    assert "".join(spoken) == "".join(text.split())  # every character of every word, once, in order
    for word in spoken:  # a CJK character is a word of its own; other words are runs between spaces
        cjk = [c for c in word if "\u4e00" <= c <= "\u9fff"]
        assert not any(c.isspace() for c in word) and (not cjk or (len(cjk) == 1 and word[0] == cjk[0]))
    assert len(spoken) == sum(1 for c in text if "\u4e00" <= c <= "\u9fff") + len(
        [w for w in "".join(" " if "\u4e00" <= c <= "\u9fff" else c for c in text).split() if any(c.isalnum() for c in w)]
    )


def test_cjk_characters_are_words_of_one_syllable_each() -> None:
    t = estimated("我们好。", start=0, end=9000, rate=24000)
    assert [w.text for w in t.words()] == ["我", "们", "好。"]
    lengths = [w.end - w.start for w in t.words()]
    assert max(lengths) - min(lengths) <= 1  # equal, the full stop's pause kept out of the word
    assert char_weight("我") == 3 * char_weight("a")


def test_pauses_weigh_more_than_letters() -> None:
    assert char_weight(".") > char_weight(",") > char_weight("a") > char_weight(" ")
    t = estimated("ab. cd", start=0, end=1000, rate=1000)
    a, b = t.words()
    assert a.text == "ab." and a.end == t.ends[1]  # the word ends with its last letter
    assert b.start - a.end > (a.end - a.start)  # the full stop and the space: a longer gap than "ab" itself


def test_aligned_spans_plug_in_and_are_mapped_onto_the_delivered_segment() -> None:
    text = "ab cd"
    # the aligner's spans in the segment's own 24 kHz audio (1000 samples); the space is not placed
    spans = [(0, 100), (100, 300), None, (500, 700), (700, 1000)]
    t = aligned(text, spans, source_samples=1000, start=5000, end=5500, rate=12000)  # e.g. speed 2
    _check(t, text)
    assert t.source == "aligned"
    assert t.starts == (5000, 5050, 5150, 5250, 5350)
    assert t.ends == (5050, 5150, 5250, 5350, 5500)
    with pytest.raises(ValueError):
        aligned("ab", [(0, 1)], source_samples=10, start=0, end=10, rate=10)


def test_aligned_is_made_monotonic_when_the_aligner_is_not() -> None:
    t = aligned("abc", [(0, 500), (300, 400), (900, 1000)], source_samples=1000, start=0, end=1000, rate=1000)
    _check(t, "abc")


def test_elevenlabs_shape_tiles_segments_without_drift() -> None:
    """Per-chunk times (base = the segment's start), summed as pipecat does, give the context-relative ones."""
    rate, bounds = 22050, [0, 12347, 30001, 30002, 51111]
    cumulative = 0
    for s, e in zip(bounds, bounds[1:], strict=False):
        t = estimated("Satu dua, tiga.", start=s, end=e, rate=rate)
        chunk = elevenlabs_alignment(t, base=t.start)
        absolute = elevenlabs_alignment(t, base=0)
        assert chunk["chars"] == [*"Satu dua, tiga.", " "]
        assert len(chunk["chars"]) == len(chunk["charStartTimesMs"]) == len(chunk["charDurationsMs"])
        assert [x + cumulative for x in chunk["charStartTimesMs"]] == absolute["charStartTimesMs"]
        assert chunk["charStartTimesMs"][0] == 0 and chunk["charDurationsMs"][-1] == 0
        cumulative += chunk["charStartTimesMs"][-1] + chunk["charDurationsMs"][-1]
        assert cumulative == round(e * 1000 / rate)


@pytest.mark.parametrize("fmt,rate", [("pcm", 24000), ("pcm", 8000), ("pcm", 22050), ("pcm", 44100), ("mp3", 22050)])
@pytest.mark.parametrize("speed", [1.0, 0.5, 1.3, 2.0])
def test_writer_position_is_the_delivered_sample_count(fmt: str, rate: int, speed: float) -> None:
    """Segment boundaries come from the writer: its position of the last source sample is exactly how many
    samples it delivered, whatever the chunking, speed and rate."""
    rng = np.random.default_rng(1)
    for n in (80, 401, 3361, 12000, 12345):
        w = AudioWriter(fmt, source_rate=24000, speed=speed, rate=rate)
        x = (rng.standard_normal(n) * 0.1).astype(np.float32)
        for i in range(0, n, 997):
            w.write(x[i : i + 997])
        w.finish()
        assert w.samples_in == n
        assert w.samples_out == w.position(n)


def test_aligned_takes_an_aligners_span_array() -> None:
    """The codec engine's aligner gives `(len(text), 2)` int64 sample spans at the codec's rate."""
    spans = np.array([[0, 2400], [2400, 4800], [4800, 6000], [7200, 9600], [9600, 12000]], np.int64)
    t = aligned("ab cd", spans, source_samples=12000, start=24000, end=30000, rate=12000)  # speed 2
    _check(t, "ab cd")
    assert [(w.text, w.start, w.end) for w in t.words()] == [("ab", 24000, 26400), ("cd", 27600, 30000)]


def test_join_keeps_each_segment_in_place_and_the_seams_take_no_time() -> None:
    from app.service.timing import SegmentTimings, aligned, estimated

    a = estimated("satu dua", start=0, end=4800, rate=24000)
    b = aligned("tiga", [(0, 100), (100, 200), (200, 300), (300, 400)], source_samples=400, start=4800, end=9600, rate=24000)
    j = SegmentTimings.join([a, b], 24000)
    assert j.text == "satu dua tiga" and (j.start, j.end) == (0, 9600)
    assert j.starts[8] == j.ends[8] == 4800  # the space joining them, at the seam
    assert j.starts[:8] == a.starts and j.starts[9:] == b.starts
    assert [w.text for w in j.words()] == ["satu", "dua", "tiga"]
    assert j.source == "estimated" and SegmentTimings.join([b], 24000).source == "aligned"
    assert SegmentTimings.join([], 24000).text == ""
