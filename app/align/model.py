"""The aligner model: a CTC wav2vec2 (`transformers.Wav2Vec2ForCTC`, e.g. the MMS forced-alignment model) run
on padded batches, its emissions aligned to each request's text (`app.align.ctc`).

Audio at any rate is resampled to the model's (16 kHz, soxr); a frame is `stride` model samples (320: 20 ms),
and spans come back in samples at the request's own rate. Batches are padded with zeros and masked (models
with layer-normalized features, as MMS; HF's advice is no mask for group-normalized ones), so an item's
emissions do not depend on its neighbours there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import torch

from app.align.ctc import AlignmentError, forced_align, min_frames, token_frames
from app.align.result import AlignRequest
from app.align.text import Transcript, Vocabulary, char_spans, transcribe

logger = logging.getLogger(__name__)


class CTCAligner:
    """Character spans of texts over their audio, several requests per forward pass."""

    def __init__(self, model: torch.nn.Module, vocab: Vocabulary, *, sample_rate: int = 16_000,
                 do_normalize: bool = True) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.sample_rate = sample_rate
        self.do_normalize = do_normalize
        config = model.config
        self.stride = math.prod(config.conv_stride)  # model samples per emission frame
        self.masked = getattr(config, "feat_extract_norm", "layer") == "layer"

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, device: str = "cpu") -> CTCAligner:
        """Load a hub id or local directory holding a `Wav2Vec2ForCTC` and its CTC tokenizer (vocab.json). The
        blank is the vocabulary's `<blank>` when it has one (MMS), else the pad token (HF's CTC blank)."""
        from transformers import AutoFeatureExtractor, AutoTokenizer, Wav2Vec2ForCTC

        model = Wav2Vec2ForCTC.from_pretrained(name_or_path).to(device)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        # the model's labels only: a tokenizer may add tokens (its word delimiter) that the model never emits
        ids = {t: i for t, i in tokenizer.get_vocab().items() if 0 <= i < model.config.vocab_size}
        blank = ids.get("<blank>", tokenizer.pad_token_id)
        delimiter = getattr(tokenizer, "word_delimiter_token", None)
        vocab = Vocabulary(ids, blank=int(blank), word_delimiter=ids.get(delimiter) if delimiter else None)
        try:
            features = AutoFeatureExtractor.from_pretrained(name_or_path)
            rate, normalize = features.sampling_rate, bool(getattr(features, "do_normalize", True))
        except (OSError, ValueError):  # no preprocessor_config.json: wav2vec2's defaults
            rate, normalize = 16_000, True
        logger.info("aligner %s loaded on %s (%d labels, blank %d)", name_or_path, device, len(ids), blank)
        return cls(model, vocab, sample_rate=rate, do_normalize=normalize)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def frames(self, n_samples: int) -> int:
        """Emission frames for `n_samples` model-rate samples."""
        return int(self.model._get_feat_extract_output_lengths(torch.tensor(n_samples)))

    @torch.inference_mode()
    def emissions(self, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Model-rate clips -> per clip `(frames, labels)` float32 log-probabilities, in one padded forward pass."""
        if not clips:
            return []
        lengths = [len(c) for c in clips]
        batch = np.zeros((len(clips), max(lengths)), dtype=np.float32)
        for i, clip in enumerate(clips):
            x = np.asarray(clip, dtype=np.float32)
            if self.do_normalize:  # as Wav2Vec2FeatureExtractor: zero mean, unit variance over the clip itself
                x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
            batch[i, : len(x)] = x
        inputs = torch.from_numpy(batch).to(self.device)
        mask = None
        if self.masked and len(set(lengths)) > 1:
            mask = (torch.arange(batch.shape[1])[None, :] < torch.tensor(lengths)[:, None]).to(self.device)
        logits = self.model(inputs, attention_mask=mask).logits
        log_probs = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        return [log_probs[i, : self.frames(n)] for i, n in enumerate(lengths)]

    def align(self, requests: Sequence[AlignRequest]) -> list[np.ndarray | AlignmentError]:
        """Per request, `(len(text), 2)` int64 `[start, end)` sample spans of its characters at its own rate,
        or the `AlignmentError` that request alone met (audio too short for its text)."""
        transcripts = [transcribe(r.text, self.vocab) for r in requests]
        clips = [self._to_model_rate(r) for r in requests]
        results: list[np.ndarray | AlignmentError | None] = [None] * len(requests)
        todo = []
        for i, (clip, tr) in enumerate(zip(clips, transcripts, strict=True)):
            if not len(tr.tokens):
                results[i] = char_spans(tr, np.zeros((0, 2), np.int64), len(requests[i].audio))
            elif len(clip) < self.stride or self.frames(len(clip)) < min_frames(tr.tokens):
                results[i] = AlignmentError(
                    f"{len(clip) / self.sample_rate:.2f} s of audio is too short to align {len(tr.tokens)} letters")
            else:
                todo.append(i)
        for i, emission in zip(todo, self.emissions([clips[i] for i in todo]), strict=True):
            results[i] = self._spans(emission, transcripts[i], requests[i])
        return results  # type: ignore[return-value]

    def _to_model_rate(self, request: AlignRequest) -> np.ndarray:
        audio = np.asarray(request.audio, dtype=np.float32)
        if request.sample_rate == self.sample_rate or not len(audio):
            return audio
        import soxr

        return soxr.resample(audio, request.sample_rate, self.sample_rate).astype(np.float32, copy=False)

    def _spans(self, emission: np.ndarray, transcript: Transcript, request: AlignRequest) -> np.ndarray:
        path = forced_align(emission, transcript.tokens, self.vocab.blank)
        frames = token_frames(path, len(transcript.tokens))
        n_out = len(request.audio)
        samples = np.round(frames * (self.stride * request.sample_rate / self.sample_rate)).astype(np.int64)
        return char_spans(transcript, np.minimum(samples, n_out), n_out)
