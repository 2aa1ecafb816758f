"""The real vLLM (CPU) dev backend speaks what the service expects: SSE completions of speech tokens.

Pinned facts of vLLM 0.32 that the service's client relies on (see also the dev backend report):
* one `data: {json}` line per event, a blank line between events, the stream closes with `data: [DONE]`;
* an event's `choices[0].text` may hold several `<|s_N|>` tokens (the server coalesces when behind);
* the last choice event has `finish_reason` "stop" (EOS `<|im_end|>`, never in the text) or "length"; with
  `--stream-interval N` (the dev server runs with 5, as vllm.yaml) it also carries the last few tokens;
* `return_token_ids: true` adds each event's token ids (`choices[0].token_ids`), the EOS id included, and the
  speech tokens `<|s_0|>`...`<|s_65535|>` are 65,536 consecutive ids (the service maps ids to codes with that);
* usage comes only with `stream_options.include_usage`, in a separate event with `choices: []`;
* an over-long prompt is refused before streaming with 400 and
  {"error": {"message", "type": "BadRequestError", "param": "input_tokens", "code": 400}}.
"""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest

from tools.vllm_server import MAX_MODEL_LEN, SERVED_MODEL_NAME

SPEECH = re.compile(r"<\|s_(\d+)\|>")
TTS_PROMPT = "<|im_start|>husein: Hello, this is a short test of the speech system.<|speech_start|>"
SAMPLING = {"temperature": 0.6, "repetition_penalty": 1.15}


def clone_prompt(reference_tokens: list[int], reference_text: str, text: str) -> str:
    ref = "".join(f"<|s_{t}|>" for t in reference_tokens)
    return f"<|im_start|>{reference_text}<|speech_start|>{ref}<|im_end|><|im_start|>{text}<|speech_start|>"


@dataclass
class Stream:
    status: int
    raw_lines: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    done: bool = False
    error: dict | None = None

    @property
    def text(self) -> str:
        return "".join(c["text"] for e in self.events for c in e["choices"])

    @property
    def tokens(self) -> list[int]:
        return [int(n) for n in SPEECH.findall(self.text)]

    @property
    def finish_reason(self) -> str | None:
        reasons = [c["finish_reason"] for e in self.events for c in e["choices"] if c["finish_reason"]]
        assert len(reasons) <= 1, reasons
        return reasons[0] if reasons else None

    @property
    def usage(self) -> dict | None:
        found = [e["usage"] for e in self.events if e.get("usage")]
        return found[-1] if found else None


def complete(url: str, prompt: str, **params: object) -> Stream:
    body = {"model": SERVED_MODEL_NAME, "prompt": prompt, "stream": True, **SAMPLING, **params}
    with (
        httpx.Client(timeout=httpx.Timeout(120.0, connect=5.0), trust_env=False) as client,
        client.stream("POST", f"{url}/v1/completions", json=body) as r,
    ):
        out = Stream(r.status_code)
        if r.status_code != 200:
            out.error = json.loads(r.read())
            return out
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            out.raw_lines.append(line)
            if not line:
                continue
            assert line.startswith("data: "), line
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                out.done = True
                continue
            assert not out.done, "event after [DONE]"
            out.events.append(json.loads(data))
    return out


def test_models_lists_the_tiny_model(vllm_url: str) -> None:
    r = httpx.get(f"{vllm_url}/v1/models", trust_env=False, timeout=10)
    assert r.status_code == 200
    (model,) = r.json()["data"]
    assert model["id"] == SERVED_MODEL_NAME
    assert model["max_model_len"] == MAX_MODEL_LEN


def test_stream_is_sse_of_speech_tokens(vllm_url: str) -> None:
    s = complete(vllm_url, TTS_PROMPT, max_tokens=40, seed=1)
    assert s.status == 200 and s.done
    assert s.raw_lines[-1] == "" or s.raw_lines[-1] == "data: [DONE]"
    assert [ln for ln in s.raw_lines if ln][-1] == "data: [DONE]"
    for e in s.events:
        assert e["object"] == "text_completion"
        assert e["model"] == SERVED_MODEL_NAME
        assert e["id"].startswith("cmpl-")
        (choice,) = e["choices"]
        assert choice["index"] == 0
        assert set(choice) >= {"text", "finish_reason"}
    assert s.usage is None  # not asked for
    tokens = s.tokens
    assert tokens, s.text
    assert all(0 <= t < 65536 for t in tokens)
    assert SPEECH.sub("", s.text) == "", "the completion holds only speech tokens"
    assert s.finish_reason in ("stop", "length")


def test_max_tokens_is_honoured(vllm_url: str) -> None:
    s = complete(vllm_url, TTS_PROMPT, max_tokens=25, seed=2, ignore_eos=True, stream_options={"include_usage": True})
    assert s.finish_reason == "length"
    assert s.usage == {
        "prompt_tokens": s.usage["prompt_tokens"],
        "completion_tokens": 25,
        "total_tokens": s.usage["total_tokens"],
    }
    assert s.usage["total_tokens"] == s.usage["prompt_tokens"] + 25
    assert 23 <= len(s.tokens) <= 25  # with ignore_eos an <|im_end|> is generated but never shown as text
    usage_event = s.events[-1]
    assert usage_event["choices"] == [] and usage_event["usage"] == s.usage

    for seed in range(3):  # without ignore_eos: never more than max_tokens
        s = complete(vllm_url, TTS_PROMPT, max_tokens=30, seed=seed)
        assert len(s.tokens) <= 30
        assert s.finish_reason == ("length" if len(s.tokens) == 30 else "stop")


def test_streams_end_on_im_end(vllm_url: str) -> None:
    def run(seed: int) -> Stream:
        return complete(vllm_url, TTS_PROMPT, max_tokens=1500, seed=seed, stream_options={"include_usage": True})

    with ThreadPoolExecutor(4) as pool:
        streams = list(pool.map(run, range(8)))
    stops = 0
    for s in streams:
        assert s.done
        if s.finish_reason == "stop":
            stops += 1
            final = [e for e in s.events if e["choices"]][-1]["choices"][0]
            assert "<|im_end|>" not in final["text"] and final["stop_reason"] is None  # EOS: no text, no stop string
            assert s.usage["completion_tokens"] == len(s.tokens) + 1  # the EOS counts, is not shown
        assert "<|im_end|>" not in s.text
    lengths = [len(s.tokens) for s in streams]
    assert stops >= 4, lengths
    assert sum(lengths) / len(lengths) < 1000, lengths


def test_token_ids_are_the_speech_tokens_of_the_text(vllm_url: str) -> None:
    """What the service's reader relies on: `/tokenize` gives the speech tokens consecutive ids, and each
    event's `token_ids` are exactly the tokens of its text (plus the EOS id at the end)."""
    from app.backend.vllm import VLLMClient

    async def learn() -> int | None:
        client = VLLMClient(vllm_url, SERVED_MODEL_NAME)
        try:
            await client.start()
            return client.speech_id_base
        finally:
            await client.aclose()

    base = asyncio.run(learn())
    assert base is not None
    s = complete(vllm_url, TTS_PROMPT, max_tokens=200, seed=7, return_token_ids=True)
    assert s.done and s.tokens
    ids = [t for e in s.events for c in e["choices"] for t in c["token_ids"]]
    assert [t - base for t in ids if base <= t < base + 65536] == s.tokens
    if s.finish_reason == "stop":
        assert not base <= ids[-1] < base + 65536  # the EOS id ends the list, outside the speech range
    assert max(len(e["choices"][0]["token_ids"]) for e in s.events if e["choices"]) > 1  # --stream-interval 5


def test_same_seed_same_stream(vllm_url: str) -> None:
    a = complete(vllm_url, TTS_PROMPT, max_tokens=30, seed=123)
    b = complete(vllm_url, TTS_PROMPT, max_tokens=30, seed=123)
    assert a.tokens == b.tokens


def test_voice_clone_prompt(vllm_url: str) -> None:
    prompt = clone_prompt(list(range(1000, 1150)), "This is the reference.", "Say this with that voice.")
    s = complete(vllm_url, prompt, max_tokens=60, seed=4, stream_options={"include_usage": True})
    assert s.status == 200 and s.done
    assert s.usage["prompt_tokens"] == 1 + 22 + 1 + 150 + 1 + 1 + 25 + 1  # one token per byte / added token
    assert s.tokens and SPEECH.sub("", s.text) == ""


def test_concurrent_streams(vllm_url: str) -> None:
    with ThreadPoolExecutor(8) as pool:
        streams = list(pool.map(lambda i: complete(vllm_url, TTS_PROMPT, max_tokens=50, seed=100 + i), range(8)))
    for s in streams:
        assert s.done and 0 < len(s.tokens) <= 50
    assert len({tuple(s.tokens) for s in streams}) == 8


@pytest.mark.parametrize("stream", [True, False])
def test_overlong_prompt_is_a_400(vllm_url: str, stream: bool) -> None:
    prompt = "<|im_start|>husein: x<|speech_start|>" + "<|s_7|>" * MAX_MODEL_LEN
    body = {"model": SERVED_MODEL_NAME, "prompt": prompt, "stream": stream, "max_tokens": 10}
    r = httpx.post(f"{vllm_url}/v1/completions", json=body, trust_env=False, timeout=60)
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "BadRequestError" and err["code"] == 400 and err["param"] == "input_tokens"
    assert "maximum context length is 4096 tokens" in err["message"]


def test_max_tokens_is_clamped_to_the_context(vllm_url: str) -> None:
    """A prompt that fits but leaves less room than max_tokens is not refused: the output is cut at
    max_model_len with finish_reason "length" (a prompt of exactly max_model_len tokens is a 400)."""
    prompt = "<|im_start|><|speech_start|>" + "<|s_9|>" * (MAX_MODEL_LEN - 2 - 5)
    s = complete(vllm_url, prompt, max_tokens=100, seed=5, ignore_eos=True, stream_options={"include_usage": True})
    assert s.status == 200
    assert s.usage["prompt_tokens"] == MAX_MODEL_LEN - 5
    assert s.usage["completion_tokens"] == 5 and s.finish_reason == "length"

    full = "<|im_start|><|speech_start|>" + "<|s_9|>" * (MAX_MODEL_LEN - 2)
    s = complete(vllm_url, full, max_tokens=100)
    assert s.status == 400 and s.error["error"]["code"] == 400
