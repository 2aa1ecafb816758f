"""The wav2vec2 aligner on a random-weight tiny model saved like a hub model: loading, the same boundaries as the
reference kernel on its emissions, batches that change nothing, spans at the request's rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.align.checkpoint import MMS_LABELS
from app.align.ctc import AlignmentError, forced_align, token_frames
from app.align.model import CTCAligner
from app.align.result import AlignRequest
from app.align.text import char_spans, transcribe
from tests.align.reference import reference_token_frames

TEXTS = ["selamat pagi, semua", "hello world", "你好, apa khabar?", "ok"]


@pytest.fixture(scope="module")
def aligner(tiny_aligner_dir: Path) -> CTCAligner:
    return CTCAligner.from_pretrained(str(tiny_aligner_dir))


def speechlike(seconds: float, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = 0.5 + 0.5 * np.sin(np.linspace(0, 12 * np.pi, n)) ** 2
    return (0.1 * envelope * rng.standard_normal(n)).astype(np.float32)


def test_loads_a_saved_model_as_a_hub_model_would_be(aligner: CTCAligner) -> None:
    assert aligner.vocab.ids == {label: i for i, label in enumerate(MMS_LABELS)}
    assert aligner.vocab.blank == 0 and aligner.vocab.word_delimiter is None  # the tokenizer's "|" is no label
    assert (aligner.stride, aligner.sample_rate, aligner.do_normalize, aligner.masked) == (320, 16_000, True, True)
    assert aligner.frames(16_000) == 49


@pytest.mark.parametrize("seed", range(4))
def test_same_boundaries_as_the_reference_on_the_model_emissions(aligner: CTCAligner, seed: int) -> None:
    text = TEXTS[seed]
    audio = speechlike(1.0 + seed * 0.7, 16_000, seed)
    emission = aligner.emissions([audio])[0]
    tokens = transcribe(text, aligner.vocab).tokens
    mine = token_frames(forced_align(emission, tokens, aligner.vocab.blank), len(tokens))
    np.testing.assert_array_equal(mine, reference_token_frames(emission, tokens, aligner.vocab.blank))
    # and end to end: the request's character spans are the reference's token frames, in samples
    transcript = transcribe(text, aligner.vocab)
    expected = char_spans(transcript, np.minimum(reference_token_frames(emission, tokens, 0) * 320, len(audio)),
                          len(audio))
    (spans,) = aligner.align([AlignRequest(audio, 16_000, text)])
    np.testing.assert_array_equal(spans, expected)


def test_a_batch_gives_what_each_request_gives_alone(aligner: CTCAligner) -> None:
    requests = [AlignRequest(speechlike(0.6 + 0.5 * i, 24_000, i), 24_000, text) for i, text in enumerate(TEXTS)]
    together = aligner.align(requests)
    for request, spans in zip(requests, together, strict=True):
        (alone,) = aligner.align([request])
        np.testing.assert_array_equal(spans, alone)
    lengths = [len(r.audio) for r in requests]
    emissions = aligner.emissions([aligner._to_model_rate(r) for r in requests])
    for emission, request in zip(emissions, requests, strict=True):
        np.testing.assert_allclose(emission, aligner.emissions([aligner._to_model_rate(request)])[0], atol=1e-4)
    assert len(set(lengths)) == len(lengths)  # the batch was padded


def test_spans_come_back_at_the_request_rate_in_order(aligner: CTCAligner) -> None:
    text = "terima kasih"
    (spans,) = aligner.align([AlignRequest(speechlike(1.5, 24_000, 3), 24_000, text)])
    assert spans.shape == (len(text), 2) and spans.dtype == np.int64
    assert spans[0, 0] >= 0 and spans[-1, 1] <= 36_000
    assert np.all(spans[:, 1] >= spans[:, 0]) and np.all(spans[1:, 0] >= spans[:-1, 1])
    letters = [i for i, c in enumerate(text) if c != " "]
    assert np.all(spans[letters] % 480 == 0)  # a 20 ms frame is 480 samples at 24 kHz
    assert np.all(spans[letters, 1] > spans[letters, 0])


def test_audio_too_short_for_its_text_fails_alone(aligner: CTCAligner) -> None:
    good = AlignRequest(speechlike(1.0, 24_000, 1), 24_000, "ok")
    short = AlignRequest(speechlike(0.1, 24_000, 2), 24_000, "a much longer sentence than this audio")
    empty = AlignRequest(np.zeros(0, np.float32), 24_000, "!")
    results = aligner.align([good, short, empty])
    assert isinstance(results[0], np.ndarray) and results[0].shape == (2, 2)
    assert isinstance(results[1], AlignmentError) and "too short" in str(results[1])
    assert results[2].tolist() == [[0, 0]]
