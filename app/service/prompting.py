"""The prompt a job sends, and its `max_tokens` fitted into the model's context."""

from __future__ import annotations

import logging
from typing import Protocol

from app.errors import BackendError, PromptTooLongError
from app.prompts import context_prompt, speech_prompt
from app.service.context import SpeechContext

logger = logging.getLogger(__name__)


class TokenCounter(Protocol):
    async def count_prompt_tokens(self, prompt: str) -> tuple[int, int | None] | None: ...


def segment_prompt(voice: str, text: str, context: SpeechContext | None) -> str:
    """A built-in voice speaking `text`, after the previous segment `context` when given."""
    if context is None:
        return speech_prompt(voice, text)
    return context_prompt(voice, context.text, context.tokens, text)


async def fit_context(prompt: str, max_tokens: int, *, param: str, max_model_len: int, counter: TokenCounter) -> int:
    """`max_tokens` capped so prompt + output fit the model's context; a 400 if the prompt alone cannot.

    Every token covers at least one byte, so a prompt whose bytes plus `max_tokens` fit needs no check.
    """
    limit = max_model_len
    if len(prompt.encode()) + max_tokens <= limit:
        return max_tokens
    counted = await counter.count_prompt_tokens(prompt)
    if counted is None:
        return max_tokens  # the backend will say if it does not fit
    n_prompt, backend_limit = counted
    limit = backend_limit or limit
    if n_prompt >= limit - 1:
        raise PromptTooLongError(
            f"the prompt is {n_prompt} tokens but the model's context is {limit} tokens; "
            "shorten the text or the reference audio",
            param=param,
        )
    if max_tokens > limit - n_prompt:
        logger.info("max_tokens %d capped to %d to fit the context", max_tokens, limit - n_prompt)
    return min(max_tokens, limit - n_prompt)


async def check_room(
    prompt: str, room: int, *, param: str, max_model_len: int, counter: TokenCounter, at_least: int
) -> None:
    """A 400 saying how many tokens over, unless `prompt` leaves `room` tokens of the model's context (a saved
    voice's reference, before it is stored: room for a text and its speech). `at_least`: the prompt's tokens
    when the backend cannot count them (a reference's speech tokens are a token each)."""
    if len(prompt.encode()) + room <= max_model_len:  # every token covers at least one byte
        return
    try:
        counted = await counter.count_prompt_tokens(prompt)
    except BackendError as exc:
        logger.warning("the backend could not count a reference's tokens (%s); checking its speech tokens only", exc)
        counted = None
    n_prompt, limit = (counted[0], counted[1] or max_model_len) if counted else (at_least, max_model_len)
    over = n_prompt + room - limit
    if over > 0:
        raise PromptTooLongError(
            f"the reference (clip and transcript) is {n_prompt} tokens; with {room} tokens kept for a text and its "
            f"speech it is {over} tokens over the model's context of {limit} tokens: use a shorter clip",
            param=param,
            code="reference_too_long",
        )
