"""Intelligibility: an ASR model the operator names transcribes the rendered audio; the character error rate
(CER) against what the service read aloud, per language and per line (24 kHz, 8 kHz mu-law).

`--asr` is a hub id or a local directory (transformers' `automatic-speech-recognition` pipeline: Whisper,
wav2vec2 CTC, ...), or `module:function`, a Python callable `(audio float32 mono, sample_rate, language) -> text`.
Only the plumbing is tested here (a random-weight wav2vec2 and a stand-in callable): real scores need real ASR
weights, which these machines cannot download.
"""

from __future__ import annotations

import importlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

Transcriber = Callable[[np.ndarray, int, str], str]
_DROP = re.compile(r"[^\w\s]|_", re.UNICODE)


def normalize(text: str) -> str:
    """What CER compares: NFKC, lower case, punctuation dropped, one space between words; CJK characters are
    separate units (an ASR may or may not put spaces between them)."""
    text = _DROP.sub(" ", unicodedata.normalize("NFKC", text).lower())
    text = re.sub(r"([\u3400-\u9fff])", r" \1 ", text)
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions of one character)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def units(text: str) -> str:
    """The characters CER counts: the normalized text without spaces."""
    return normalize(text).replace(" ", "")


def cer(reference: str, hypothesis: str) -> float:
    ref = units(reference)
    return edit_distance(ref, units(hypothesis)) / max(1, len(ref))


def cer_by_group(rows: Iterable[tuple[str, str, str]]) -> dict[str, float]:
    """(group, reference, hypothesis) rows -> {group: total edits / total reference characters}."""
    edits: dict[str, int] = defaultdict(int)
    chars: dict[str, int] = defaultdict(int)
    for group, reference, hypothesis in rows:
        ref = units(reference)
        edits[group] += edit_distance(ref, units(hypothesis))
        chars[group] += len(ref)
    return {g: edits[g] / max(1, chars[g]) for g in sorted(edits)}


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return audio.astype(np.float32)
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(audio, target // g, rate // g).astype(np.float32)


def pipeline_transcriber(model: str, device: str | None = None) -> Transcriber:
    """transformers' ASR pipeline over `model` (hub id or directory), fed at its feature extractor's rate."""
    from transformers import pipeline

    if device is None:
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    asr = pipeline("automatic-speech-recognition", model=model, device=device)
    rate = int(getattr(asr.feature_extractor, "sampling_rate", 16_000))

    def transcribe(audio: np.ndarray, sample_rate: int, language: str) -> str:
        return str(asr({"raw": resample(audio, sample_rate, rate), "sampling_rate": rate})["text"])

    return transcribe


def load_transcriber(spec: str) -> Transcriber:
    """`module:function` (a callable), else a model for the pipeline (hub id or directory)."""
    if ":" in spec and not Path(spec).exists():
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)
    return pipeline_transcriber(spec)


def transcribe_file(transcriber: Transcriber, path: Path, language: str) -> str:
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    return transcriber(audio.mean(axis=1), rate, language)
