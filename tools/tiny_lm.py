"""A tiny random-weight Qwen3 "TTS LM" for the development backend (no model hub needed).

`build(out)` writes a transformers checkpoint (config.json, generation_config.json, safetensors,
tokenizer.json/tokenizer_config.json) that vLLM and AutoTokenizer load offline:

* Tokenizer: byte-level BPE over the 256 byte symbols (no merges), plus the added tokens
  `<|im_start|>`, `<|im_end|>`, `<|speech_start|>` and `<|s_0|>` ... `<|s_65535|>`, all added as
  non-special tokens so speech tokens survive `skip_special_tokens`. `<|im_end|>` is the tokenizer's
  eos_token (transformers then treats it as special when decoding, like Qwen's own tokenizer) and the
  eos_token_id of config.json and generation_config.json.
* Model: Qwen3, hidden 256, 2 layers, 4 heads of 64 (vLLM's CPU attention wants head_dim 64),
  max_position_embeddings 8192, float32 weights.
* Shaped random weights, so that sampling behaves like a TTS model: every embedding carries a large
  constant component in dimension 0, so the final normalised hidden state has a near-constant
  dimension 0 that acts as a per-token logit bias through lm_head column 0; the other dimensions
  carry token-dependent noise. Logits are then about: text/control tokens -30, `<|im_end|>` 0,
  speech tokens N(-EOS_MARGIN, SPEECH_LOGIT_STD**2). With temperature 0.6-1.0 almost every
  sampled token is a speech token and `<|im_end|>` comes with probability ~1/250 per step, roughly
  independent of the temperature (the two constants were chosen for that). The `<|im_end|>` logit is
  0, so repetition_penalty leaves it unchanged even when the prompt holds `<|im_end|>` (voice
  cloning), while it pushes down speech tokens already seen.

Deterministic (fixed seed); `build` is idempotent: it skips when `out` holds the same BUILD_VERSION.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from app.prompts import CONTROL_TOKENS, END_OF_TURN, N_SPEECH_TOKENS, speech_token

BUILD_VERSION = 2
MARKER = "tiny_tts_lm.json"
SEED = 20240611

HIDDEN = 256
LAYERS = 2
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 64
INTERMEDIATE = 512
MAX_POSITIONS = 8192
VOCAB_MULTIPLE = 64

# Logit shaping (see the module docstring).
SPEECH_LOGIT_STD = 2.67
EOS_MARGIN = 9.1  # mean speech logit is -EOS_MARGIN; <|im_end|> is 0
OTHER_LOGIT = -30.0
EMBED_CONST = 16.0  # dimension-0 value of every embedding
EMBED_NOISE_NORM = 16.0  # norm of the remaining dimensions of every embedding


def is_built(out: Path | str) -> bool:
    """True when `out` holds a complete build of the current BUILD_VERSION."""
    out = Path(out)
    try:
        meta = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    needed = ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors")
    standard = meta.get("speech_tokens", N_SPEECH_TOKENS) == N_SPEECH_TOKENS  # not a test's broken variant
    return meta.get("build_version") == BUILD_VERSION and standard and all((out / n).is_file() for n in needed)


def build_tokenizer(speech_tokens: int = N_SPEECH_TOKENS):
    """Byte-level BPE (256 symbols, no merges) + the control and `speech_tokens` speech tokens (the service's
    65,536 unless a test wants a model that breaks that), as a transformers tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    added = [*CONTROL_TOKENS, *(speech_token(i) for i in range(speech_tokens))]
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in added])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=END_OF_TURN, pad_token=END_OF_TURN, model_max_length=MAX_POSITIONS
    )


def _shape_weights(model, tokenizer, speech_tokens: int = N_SPEECH_TOKENS) -> None:
    """Overwrite embeddings and lm_head as described in the module docstring (in place, seeded)."""
    import torch

    gen = torch.Generator().manual_seed(SEED + 1)
    vocab = model.config.vocab_size
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    with torch.no_grad():
        noise = torch.randn(vocab, HIDDEN - 1, generator=gen)
        emb.zero_()
        emb[:, 0] = EMBED_CONST
        emb[:, 1:] = noise / noise.norm(dim=1, keepdim=True) * EMBED_NOISE_NORM

        # Calibrate on what the final norm really outputs (the layers add a little to the residual).
        ids = torch.randint(0, len(tokenizer), (4, 256), generator=gen)
        hidden = model.model(input_ids=ids).last_hidden_state
        h0 = hidden[..., 0].mean().item()
        h_rest = hidden[..., 1:].norm(dim=-1).mean().item()

        first_speech = tokenizer.convert_tokens_to_ids(speech_token(0))
        last_speech = tokenizer.convert_tokens_to_ids(speech_token(speech_tokens - 1))
        assert last_speech - first_speech == speech_tokens - 1, "speech tokens must be contiguous"
        speech = slice(first_speech, last_speech + 1)
        head.zero_()
        head[:, 0] = OTHER_LOGIT / h0
        head[speech, 0] = -EOS_MARGIN / h0
        head[speech, 1:] = torch.randn(speech_tokens, HIDDEN - 1, generator=gen) * (SPEECH_LOGIT_STD / h_rest)
        head[tokenizer.convert_tokens_to_ids(END_OF_TURN)] = 0.0


def build(out: Path | str, force: bool = False, speech_tokens: int = N_SPEECH_TOKENS) -> Path:
    """Write the tiny checkpoint to `out` (skipped if already built with this BUILD_VERSION); return `out`.
    `speech_tokens`: fewer than the service's 65,536 makes a model that breaks its assumptions (tts-qualify's
    test)."""
    out = Path(out)
    if not force and is_built(out):
        return out
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise FileExistsError(f"{out} exists and is not a tiny-tts-lm build; refusing to overwrite it")

    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    tokenizer = build_tokenizer(speech_tokens)
    eos = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    vocab = -(-len(tokenizer) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    config.dtype = torch.float32
    torch.manual_seed(SEED)
    model = Qwen3ForCausalLM(config).eval()
    _shape_weights(model, tokenizer, speech_tokens)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=eos)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        meta = {
            "build_version": BUILD_VERSION,
            "speech_tokens": speech_tokens,
            "seed": SEED,
            "vocab_size": vocab,
            "tokenizer_size": len(tokenizer),
            "eos_token_id": eos,
            "first_speech_token_id": tokenizer.convert_tokens_to_ids(speech_token(0)),
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        tmp.chmod(0o755)  # mkdtemp makes it private
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
