"""The running vLLM against the service's assumptions: it serves the model, its token ids are the tokenizer's,
and a short generation from the service's prompt is speech tokens ending at the end of speech."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from app.prompts import END_OF_TURN, N_SPEECH_TOKENS, speech_prompt, speech_tokens_text
from app.qualify.assumptions import Check


@dataclass(frozen=True)
class Served:
    """What vLLM's `/v1/models` says about the served model."""

    name: str
    root: str | None  # the path or hub id vLLM loaded
    max_model_len: int | None


def served_model(client: httpx.Client, name: str) -> tuple[Check, Served | None]:
    assumption = f"vLLM serves {name!r} (the service's MODEL_NAME)"
    try:
        resp = client.get("/v1/models")
        resp.raise_for_status()
        data = resp.json().get("data", [])
    except (httpx.HTTPError, ValueError) as exc:
        return Check("vLLM /v1/models", False, f"{client.base_url} did not answer: {exc}", assumption), None
    for model in data:
        if model.get("id") == name:
            served = Served(name, model.get("root"), model.get("max_model_len"))
            detail = f"{name!r} from {served.root}, max_model_len {served.max_model_len}"
            return Check("vLLM /v1/models", True, detail, assumption), served
    ids = [m.get("id") for m in data]
    return Check("vLLM /v1/models", False, f"serves {ids}", assumption), None


def speech_ids(client: httpx.Client, name: str, local_base: int | None) -> tuple[Check, int | None]:
    """vLLM's `/tokenize` of <|s_0|><|s_1|><|s_65535|>: contiguous, and the ids the local tokenizer gives; and
    vLLM's id of <|s_0|>."""
    assumption = "vLLM's speech token ids are contiguous (app/backend/vllm.py reads codes from token ids)"
    probe = speech_tokens_text([0, 1, N_SPEECH_TOKENS - 1])
    try:
        resp = client.post("/tokenize", json={"model": name, "prompt": probe, "add_special_tokens": False})
        ids = resp.json().get("tokens") if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return Check("vLLM token ids", False, f"/tokenize failed: {exc}", assumption), None
    if not isinstance(ids, list) or len(ids) != 3 or ids[1] != ids[0] + 1 or ids[2] != ids[0] + N_SPEECH_TOKENS - 1:
        return Check("vLLM token ids", False, f"/tokenize gave {str(ids)[:80]}", assumption), None
    if local_base is not None and ids[0] != local_base:
        detail = f"vLLM's <|s_0|> is {ids[0]}, the model files' {local_base}: another model?"
        return Check("vLLM token ids", False, detail, assumption), ids[0]
    return Check("vLLM token ids", True, f"ids {ids[0]}..{ids[2]}", assumption), ids[0]


def short_generation(client: httpx.Client, name: str, voice: str, base: int | None, eos: int | None) -> Check:
    """A short greedy-ish generation from the service's prompt: every token a speech token (or the end)."""
    assumption = "the model answers the prompt with speech tokens only, up to its end of speech"
    body = {
        "model": name, "prompt": speech_prompt(voice, "Hello, how can I help you?"), "max_tokens": 40,
        "temperature": 0.6, "repetition_penalty": 1.15, "seed": 7, "skip_special_tokens": False,
        "return_token_ids": True,
    }  # fmt: skip
    try:
        resp = client.post("/v1/completions", json=body)
        resp.raise_for_status()
        choice = resp.json()["choices"][0]
    except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
        return Check("vLLM generation", False, f"/v1/completions failed: {exc}", assumption)
    tokens = choice.get("token_ids")
    if base is None or tokens is None:
        return Check("vLLM generation", False, "no token ids to check (vLLM >= 0.11 returns them)", assumption)
    speech = [t for t in tokens if base <= t < base + N_SPEECH_TOKENS]
    other = [t for t in tokens if t not in speech and t != eos]
    finish = choice.get("finish_reason")
    detail = f"{len(speech)} speech tokens, {len(other)} others, finish_reason {finish!r}"
    return Check("vLLM generation", not other and bool(speech), detail, assumption)


def check_backend(
    url: str, name: str, voice: str, local_base: int | None = None, eos: int | None = None
) -> tuple[list[Check], Served | None]:
    """The served model, its speech token ids (the same as the model files' when `local_base` is known) and a
    short generation; `eos`: the end-of-speech id (from the model files), allowed at the end."""
    with httpx.Client(base_url=url, timeout=60.0) as client:
        listed, served = served_model(client, name)
        if served is None:
            return [listed], None
        ids, base = speech_ids(client, name, local_base)
        eos = eos if eos is not None else end_of_turn_id(client, name)
        return [listed, ids, short_generation(client, name, voice, base, eos)], served


def end_of_turn_id(client: httpx.Client, name: str) -> int | None:
    """vLLM's id of <|im_end|> (the model files were not read: `--steps` without `model`)."""
    try:
        tokens = client.post("/tokenize", json={"model": name, "prompt": END_OF_TURN, "add_special_tokens": False})
        ids = tokens.json().get("tokens")
    except (httpx.HTTPError, ValueError):
        return None
    return int(ids[0]) if isinstance(ids, list) and len(ids) == 1 else None
