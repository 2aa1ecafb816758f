"""A stand-in ASR for `tts-qualify --asr tests.qualify.stand_in_asr:transcribe` (the callable path): it hears
nothing, so every character of the reference is an error (CER 1.0), and it records what it was given."""

from __future__ import annotations

import numpy as np

CALLS: list[tuple[int, int, str]] = []  # (samples, sample rate, language)


def transcribe(audio: np.ndarray, sample_rate: int, language: str) -> str:
    CALLS.append((len(audio), sample_rate, language))
    return ""
