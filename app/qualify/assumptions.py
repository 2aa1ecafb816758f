"""The model's files against what the service assumes; each check names the assumption it tests.

The service (app/prompts.py, app/backend/vllm.py, app/service/prompting.py) assumes:

- speech tokens `<|s_0|>` ... `<|s_65535|>` are single tokens with contiguous ids (the client maps token ids to
  codes as `id - id(<|s_0|>)`), inside the model's vocabulary;
- `<|im_end|>` ends the speech: vLLM stops on it only when it is the model's end of sequence;
- the prompt `<|im_start|>{voice}: {text}<|speech_start|>`: its control tokens are single tokens;
- the codec has 65,536 codes, one per speech token, at 50 tokens a second, 24 kHz audio.

`load_model` reads a hub id or a local directory with transformers' own loaders (the real loading code);
`check_tokenizer` and `check_codec` are pure over what was loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.prompts import (
    CONTROL_TOKENS,
    END_OF_TURN,
    N_SPEECH_TOKENS,
    SPEECH_START,
    TURN_START,
    speech_prompt,
    speech_token,
)

TOKENS_PER_SECOND = 50  # speech tokens a second of audio (tools/capacity.py's TOKENS_PER_AUDIO_SECOND)
SAMPLE_RATE = 24_000  # the codec's output: `pcm` and `wav` responses at their default rate


@dataclass(frozen=True)
class Check:
    """One assumption: `ok`, what was found (`detail`), and what the service assumes (`assumption`)."""

    name: str
    ok: bool
    detail: str
    assumption: str

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"[{mark}] {self.name}: {self.detail}" + ("" if self.ok else f" (the service assumes {self.assumption})")


class BrokenAssumption(RuntimeError):
    """A model that breaks what the service assumes; the message names each broken assumption."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = list(checks)
        super().__init__("; ".join(c.line() for c in self.checks))


@dataclass(frozen=True)
class ModelFiles:
    tokenizer: Any  # a transformers tokenizer
    config: Any  # transformers PretrainedConfig
    eos_ids: tuple[int, ...]  # generation_config's eos ids, else config's


def _ids(value: object) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),)  # type: ignore[arg-type]


def load_model(model: str) -> ModelFiles:
    """Tokenizer, config and generation config of `model` (a hub id or a local directory), as vLLM loads them."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(model)
    config = AutoConfig.from_pretrained(model)
    try:
        eos = _ids(GenerationConfig.from_pretrained(model).eos_token_id)
    except OSError:  # no generation_config.json
        eos = ()
    return ModelFiles(tokenizer, config, eos or _ids(getattr(config, "eos_token_id", None)))


def token_id(tokenizer: Any, token: str) -> int | None:
    """The id of `token` when the tokenizer knows it as one token (not unknown), else None."""
    got = tokenizer.convert_tokens_to_ids(token)
    if got is None or (tokenizer.unk_token_id is not None and got == tokenizer.unk_token_id):
        return None
    return int(got)


def speech_range(tokenizer: Any, n: int = N_SPEECH_TOKENS) -> Check:
    assumption = f"{speech_token(0)}..{speech_token(n - 1)} single tokens with contiguous ids (app/prompts.py)"
    base = token_id(tokenizer, speech_token(0))
    if base is None:
        return Check("speech tokens", False, f"{speech_token(0)} is not a token of the tokenizer", assumption)
    for i in range(1, n):
        got = token_id(tokenizer, speech_token(i))
        if got is None:
            return Check("speech tokens", False, f"{speech_token(i)} is missing (only {i} speech tokens)", assumption)
        if got != base + i:
            detail = f"{speech_token(i)} is id {got}, not {base + i}: the ids are not contiguous"
            return Check("speech tokens", False, detail, assumption)
    beyond = token_id(tokenizer, speech_token(n))
    if beyond is not None:
        return Check("speech tokens", False, f"{speech_token(n)} exists: more than {n} speech tokens", assumption)
    encoded = tokenizer.encode(speech_token(0) + speech_token(n - 1), add_special_tokens=False)
    if list(encoded) != [base, base + n - 1]:
        return Check("speech tokens", False, f"text of two speech tokens encodes to {list(encoded)[:8]}", assumption)
    return Check("speech tokens", True, f"{n} tokens, ids {base}..{base + n - 1}", assumption)


def vocabulary(files: ModelFiles, n: int = N_SPEECH_TOKENS) -> Check:
    base = token_id(files.tokenizer, speech_token(0)) or 0
    vocab = int(getattr(files.config, "vocab_size", 0) or 0)
    ok = vocab >= base + n
    return Check("vocabulary", ok, f"config vocab_size {vocab}, last speech id {base + n - 1}",
                 "the model's embeddings cover every speech token id")  # fmt: skip


def end_of_speech(files: ModelFiles) -> Check:
    assumption = f"{END_OF_TURN} is the model's end of sequence, so vLLM ends a stream on it"
    eos = token_id(files.tokenizer, END_OF_TURN)
    if eos is None:
        return Check("end of speech", False, f"{END_OF_TURN} is not a token", assumption)
    stops = set(files.eos_ids) | set(_ids(files.tokenizer.eos_token_id))
    ok = eos in stops
    return Check("end of speech", ok, f"{END_OF_TURN} is id {eos}; end-of-sequence ids {sorted(stops)}", assumption)


def prompt_format(tokenizer: Any, voice: str = "husein") -> Check:
    assumption = (
        f"control tokens {', '.join(CONTROL_TOKENS)} are single tokens; prompt {speech_prompt(voice, 'text')!r}"
    )
    ids = {t: token_id(tokenizer, t) for t in CONTROL_TOKENS}
    missing = [t for t, i in ids.items() if i is None]
    if missing:
        return Check("prompt format", False, f"not single tokens: {', '.join(missing)}", assumption)
    encoded = list(tokenizer.encode(speech_prompt(voice, "Hello."), add_special_tokens=False))
    if not encoded or encoded[0] != ids[TURN_START] or encoded[-1] != ids[SPEECH_START]:
        return Check("prompt format", False, f"the prompt encodes to {encoded[:6]}...{encoded[-3:]}", assumption)
    return Check("prompt format", True, f"{len(encoded)} tokens, ends with {SPEECH_START} (id {ids[SPEECH_START]})",
                 assumption)  # fmt: skip


def check_tokenizer(files: ModelFiles, n: int = N_SPEECH_TOKENS) -> list[Check]:
    """Every tokenizer and config assumption (no model weights, no vLLM needed)."""
    return [
        speech_range(files.tokenizer, n),
        vocabulary(files, n),
        end_of_speech(files),
        prompt_format(files.tokenizer),
    ]


def check_codec(sample_rate: int, hop_length: int, codebook_size: int, n: int = N_SPEECH_TOKENS) -> list[Check]:
    """The codec's geometry against the service's: codes per speech token, tokens a second, sample rate."""
    rate = sample_rate / hop_length
    return [
        Check("codec codebook", codebook_size == n, f"{codebook_size} codes",
              f"one code per speech token ({n})"),
        Check("tokens per second", rate == TOKENS_PER_SECOND, f"{sample_rate} Hz / {hop_length} samples = {rate:g}",
              f"{TOKENS_PER_SECOND} tokens a second (stream pacing, the capacity model)"),
        Check("sample rate", sample_rate == SAMPLE_RATE, f"{sample_rate} Hz",
              f"{SAMPLE_RATE} Hz audio (pcm responses, the clients' default)"),
    ]  # fmt: skip


def codec_geometry(codec_model: str) -> tuple[int, int, int]:
    """(sample rate, hop length, codebook size) of a NeuCodec checkpoint (hub id or directory), from its tensor
    shapes and config.json, as the service's loader reads them (the weights memory-mapped, not loaded)."""
    from app.codec.config import infer_config, read_config_file
    from app.codec.pretrained import DECODER_PREFIXES, ENCODER_PREFIXES, read_state_dict, resolve_checkpoint

    files = resolve_checkpoint(codec_model)
    state = read_state_dict(files.weights)
    shapes = {k: v.shape for k, v in state.items() if k.startswith(DECODER_PREFIXES + ENCODER_PREFIXES)}
    config = infer_config(shapes, read_config_file(files.config))
    return config.sample_rate, config.hop_length, config.codebook_size


def failed(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if not c.ok]
