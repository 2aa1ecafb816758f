"""The TTS model's prompt formats, in one place: supporting another model is a change here.

The model (Qwen3 fine-tuned for speech) reads a turn `<|im_start|>{speaker}: {text}<|speech_start|>` and answers
with speech tokens `<|s_N|>` (N < 65536, 50 per second) ending with `<|im_end|>`. Voice cloning gives it a
reference turn whose answer is the reference clip's own speech tokens, then the turn to generate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TURN_START = "<|im_start|>"
SPEECH_START = "<|speech_start|>"
END_OF_TURN = "<|im_end|>"
CONTROL_TOKENS = (TURN_START, END_OF_TURN, SPEECH_START)  # in the order the tokenizer adds them
SPEECH_TOKEN_FORMAT = "<|s_{}|>"
N_SPEECH_TOKENS = 65_536

SPEECH_TOKEN_RE = re.compile(r"<\|s_(\d+)\|>")  # one speech token in generated text; group 1: its id
# an unfinished speech token at the end of a text piece: "<", "<|", "<|s", "<|s_12", "<|s_12|"
PARTIAL_SPEECH_TOKEN_RE = re.compile(r"<(?:\|(?:s(?:_\d*(?:\|)?)?)?)?$")
CONTROL_MARKER_RE = re.compile(r"<\|[^<>|]{0,40}\|>")  # any `<|...|>` marker: never user text


def speech_token(n: int) -> str:
    """Speech token `n` as the model writes it: `<|s_N|>`."""
    return SPEECH_TOKEN_FORMAT.format(int(n))


def strip_control_tokens(text: str) -> str:
    """User text without `<|...|>` markers, so it cannot inject speech tokens or end its own turn."""
    return " ".join(CONTROL_MARKER_RE.sub(" ", text).split())


def speech_tokens_text(tokens: Iterable[int]) -> str:
    """Speech token ids as the model writes them: `<|s_1|><|s_2|>...`."""
    return "".join(speech_token(t) for t in tokens)


def speech_prompt(voice: str, text: str) -> str:
    """A built-in voice speaking `text`."""
    return f"{TURN_START}{voice}: {text}{SPEECH_START}"


def voice_clone_prompt(reference_text: str, reference_tokens: Iterable[int], generate_text: str) -> str:
    """`generate_text` in the voice of a reference clip (its transcript and its speech tokens)."""
    return (
        f"{TURN_START}{reference_text}{SPEECH_START}{speech_tokens_text(reference_tokens)}{END_OF_TURN}"
        f"{TURN_START}{generate_text}{SPEECH_START}"
    )


def context_prompt(voice: str, previous_text: str, previous_tokens: Iterable[int], text: str) -> str:
    """A built-in voice speaking `text` right after it spoke `previous_text` as `previous_tokens`.

    The voice-cloning shape with the speaker's own previous turn as the reference, so the voice and prosody
    continue from the previous segment instead of starting afresh.
    """
    return (
        f"{TURN_START}{voice}: {previous_text}{SPEECH_START}{speech_tokens_text(previous_tokens)}{END_OF_TURN}"
        f"{speech_prompt(voice, text)}"
    )
