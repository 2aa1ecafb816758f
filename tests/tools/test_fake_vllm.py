"""Tests of the fake vLLM server (tools/fake_vllm.py), over real sockets with httpx."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tools.fake_vllm import MODES, FakeVLLM, expected_text, expected_tokens, speech_tokens
from tools.harness import wait_until

N_TOKENS = 20
CHUNK_KEYS = {"id", "object", "created", "model", "choices", "usage"}
CHOICE_KEYS = {"index", "text", "logprobs", "finish_reason", "stop_reason"}


@pytest.fixture(scope="module")
def server():
    with FakeVLLM(n_tokens=N_TOKENS) as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.restore()
    yield server


@pytest.fixture
def client():
    with httpx.Client(timeout=5.0) as c:
        yield c


def body(prompt: str = "hello world", **kw) -> dict:
    return {"model": "TTS-model", "prompt": prompt, "stream": True, "max_tokens": 1000, "temperature": 0.6, **kw}


def parse_sse(raw: str) -> list:
    """Split a complete SSE body into events: dicts for JSON, the string for anything else ([DONE], garbage)."""
    assert raw.endswith("\n\n"), raw[-50:]
    out = []
    for block in raw[:-2].split("\n\n"):
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        try:
            out.append(json.loads(payload))
        except json.JSONDecodeError:
            out.append(payload)
    return out


def stream(client: httpx.Client, url: str, payload: dict, headers: dict | None = None) -> tuple[httpx.Response, list]:
    with client.stream("POST", url + "/v1/completions", json=payload, headers=headers) as r:
        raw = r.read().decode()
    return r, parse_sse(raw) if r.status_code == 200 else raw


def text_of(events: list) -> str:
    return "".join(e["choices"][0]["text"] for e in events if isinstance(e, dict) and e.get("choices"))


# --- format and tokens -------------------------------------------------------------------------------------------


def test_sse_format_and_tokens(fake, client):
    r, events = stream(client, fake.url, body())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(isinstance(e, dict) for e in chunks)
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("cmpl-")
    for c in chunks:
        assert set(c) == CHUNK_KEYS
        assert c["object"] == "text_completion" and c["model"] == "TTS-model" and isinstance(c["created"], int)
        assert c["usage"] is None and len(c["choices"]) == 1
        choice = c["choices"][0]
        assert set(choice) == CHOICE_KEYS
        assert choice["index"] == 0 and choice["logprobs"] is None and choice["stop_reason"] is None
    # one token per event, then an empty EOS event with finish_reason "stop"
    assert len(chunks) == N_TOKENS + 1
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None] * N_TOKENS + ["stop"]
    assert chunks[-1]["choices"][0]["text"] == ""
    want = expected_tokens("hello world", N_TOKENS)
    assert [speech_tokens(c["choices"][0]["text"]) for c in chunks[:-1]] == [[t] for t in want]
    assert want == fake.expected_tokens("hello world")
    assert all(0 <= t < 65536 for t in want)
    rec = fake.requests[-1]
    assert not rec.active and not rec.cancelled and rec.tokens_sent == N_TOKENS
    assert rec.body["prompt"] == "hello world" and rec.end >= rec.start


def test_expected_tokens_is_a_pure_function():
    a = expected_tokens("abc", 50)
    assert a == expected_tokens("abc", 50)
    assert expected_tokens("abc", 80)[:50] == a  # stable prefixes
    assert expected_tokens("abc", 50, max_tokens=10) == a[:10]
    assert expected_tokens("abd", 50) != a
    assert expected_tokens("abc", 50, request_seed=7) != a
    assert expected_tokens("abc", 50, request_seed=7) == expected_tokens("abc", 50, request_seed=7)
    assert speech_tokens("x<|s_1|><|speech_start|><|s_65535|>") == [1, 65535]
    assert expected_text([3, 4]) == "<|s_3|><|s_4|>"


def test_request_seed(fake, client):
    _, events = stream(client, fake.url, body(seed=42))
    assert speech_tokens(text_of(events)) == expected_tokens("hello world", N_TOKENS, request_seed=42)


@pytest.mark.parametrize("max_tokens", [5, N_TOKENS])
def test_max_tokens_gives_length(fake, client, max_tokens):
    _, events = stream(client, fake.url, body(max_tokens=max_tokens))
    chunks = events[:-1]
    assert events[-1] == "[DONE]"
    assert len(chunks) == max_tokens
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert speech_tokens(chunks[-1]["choices"][0]["text"]) != []  # the last token rides with "length"
    assert speech_tokens(text_of(chunks)) == expected_tokens("hello world", N_TOKENS, max_tokens=max_tokens)


def test_include_usage_and_token_ids(fake, client):
    _, events = stream(client, fake.url, body(max_tokens=7, stream_options={"include_usage": True}))
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 7
    _, events = stream(client, fake.url, body(stream_options={"include_usage": True}, return_token_ids=True))
    usage = events[-2]["usage"]
    assert usage["completion_tokens"] == N_TOKENS + 1  # EOS counts
    assert usage["total_tokens"] == usage["prompt_tokens"] + N_TOKENS + 1
    ids = [i for e in events[:-2] for i in e["choices"][0]["token_ids"]]
    assert ids == [151_669 + t for t in expected_tokens("hello world", N_TOKENS)] + [151_645]  # and the EOS id
    fake.token_ids = False  # an older backend: no token ids
    _, events = stream(client, fake.url, body(return_token_ids=True))
    assert all("token_ids" not in e["choices"][0] for e in events[:-1])


def test_streams_only(fake, client):
    r = client.post(fake.url + "/v1/completions", json=body(stream=False))
    assert r.status_code == 400 and "streams only" in r.json()["error"]["message"]


def test_tokens_per_event(fake, client):
    fake.tokens_per_event = 3
    _, events = stream(client, fake.url, body())
    chunks = events[:-1]
    assert [len(speech_tokens(c["choices"][0]["text"])) for c in chunks] == [3] * 6 + [2]  # 20 tokens + EOS
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert speech_tokens(text_of(chunks)) == expected_tokens("hello world", N_TOKENS)


def test_split_tokens(fake, client):
    fake.split_tokens, fake.n_tokens = True, 60
    _, events = stream(client, fake.url, body())
    texts = [e["choices"][0]["text"] for e in events[:-1]]
    joined = "".join(texts)
    assert speech_tokens(joined) == expected_tokens("hello world", 60)
    assert joined == expected_text(expected_tokens("hello world", 60))
    partial = [t for t in texts if t.count("<|") != t.count("|>")]
    assert partial, "expected some tokens split across events"
    # same request, same events
    _, again = stream(client, fake.url, body())
    assert [e["choices"][0]["text"] for e in again[:-1]] == texts


def test_rate_pacing(fake, client):
    fake.rate, fake.n_tokens = 500.0, 50
    t0 = time.monotonic()
    _, events = stream(client, fake.url, body())
    elapsed = time.monotonic() - t0
    assert len(events) == 52
    assert elapsed >= 0.08
    assert elapsed < 5.0
    rec = fake.requests[-1]
    assert rec.end - rec.start >= 0.08


def test_models_health_version_and_errors(fake, client):
    models = client.get(fake.url + "/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["TTS-model"]
    assert client.get(fake.url + "/health").status_code == 200
    assert client.get(fake.url + "/nope").status_code == 404

    r = client.post(fake.url + "/v1/completions", json=body(model="other"))
    assert r.status_code == 404
    assert r.json() == {
        "error": {"message": "The model `other` does not exist.", "type": "NotFoundError", "param": None, "code": 404}
    }
    r = client.post(fake.url + "/v1/completions", json={"model": "TTS-model", "stream": True})
    assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequestError"
    r = client.post(fake.url + "/v1/completions", content=b"{not json")
    assert r.status_code == 400
    r = client.post(fake.url + "/v1/completions", json=body(max_tokens=0))
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
    r = client.post(fake.url + "/v1/completions", json=body(temperature=-1))
    assert r.status_code == 400 and "temperature" in r.json()["error"]["message"]
    fake.max_model_len = 100
    r = client.post(fake.url + "/v1/completions", json=body(max_tokens=200))
    assert r.status_code == 400 and "maximum context length is 100" in r.json()["error"]["message"]
    fake.api_key = "k"
    assert client.post(fake.url + "/v1/completions", json=body()).status_code == 401
    ok = client.post(fake.url + "/v1/completions", json=body(max_tokens=3), headers={"Authorization": "Bearer k"})
    assert ok.status_code == 200
    assert len(fake.requests) == 7  # the 401 never reached the handler
    assert [r.body["model"] for r in fake.requests if r.body] == ["other"] + ["TTS-model"] * 5  # one not JSON


# --- failure modes -----------------------------------------------------------------------------------------------


def test_set_mode_validates():
    fake = FakeVLLM()
    with pytest.raises(ValueError):
        fake.set_mode("explode")
    with pytest.raises(ValueError):
        fake.set_mode("stall", aftr=3)
    with pytest.raises(ValueError):
        fake.set_mode("stall", duration=1)  # cut: nothing used it
    assert set(MODES) == {"http_error", "garbage", "stall", "early_close", "error_event", "slow_first", "die"}


def test_http_error_counts_down(fake, client):
    fake.set_mode("http_error", count=1, status=500)
    r = client.post(fake.url + "/v1/completions", json=body())
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["type"] == "InternalServerError" and err["code"] == 500 and err["param"] is None
    assert not fake.requests[-1].active
    _, events = stream(client, fake.url, body())  # count used up
    assert events[-1] == "[DONE]"

    fake.set_mode("http_error", status=400)  # count=None: every request
    for _ in range(2):
        r = client.post(fake.url + "/v1/completions", json=body())
        assert r.status_code == 400 and "maximum context length" in r.json()["error"]["message"]


def test_garbage(fake, client):
    fake.set_mode("garbage", after=3)
    _, events = stream(client, fake.url, body())
    assert events[3] == "this is not json {" and isinstance(events[4], dict)
    assert [speech_tokens(e["choices"][0]["text"]) for e in events[:3]] == [
        [t] for t in fake.expected_tokens("hello world")[:3]
    ]
    assert events[-1] == "[DONE]"
    assert speech_tokens(text_of(events)) == fake.expected_tokens("hello world")


def test_stall_keeps_connection_open(fake):
    fake.set_mode("stall", after=4)
    got = []
    with httpx.Client(timeout=httpx.Timeout(5.0, read=0.3)) as c, pytest.raises(httpx.ReadTimeout):  # noqa: SIM117
        with c.stream("POST", fake.url + "/v1/completions", json=body()) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
    assert len(got) == 4
    assert fake.wait_for(lambda: fake.requests[-1].cancelled, timeout=1.0)
    rec = fake.requests[-1]
    assert rec.tokens_sent == 4
    assert fake.active_streams == 0


def test_early_close_abrupt(fake, client):
    fake.set_mode("early_close", after=5)
    lines = []
    with pytest.raises(httpx.RemoteProtocolError):  # noqa: SIM117
        with client.stream("POST", fake.url + "/v1/completions", json=body()) as r:
            lines.extend(line for line in r.iter_lines() if line)
    assert len(lines) == 5 and "[DONE]" not in "".join(lines)
    assert fake.wait_for(lambda: not fake.requests[-1].active, timeout=1.0)
    assert fake.requests[-1].tokens_sent == 5


def test_error_event(fake, client):
    fake.set_mode("error_event", after=3)
    _, events = stream(client, fake.url, body())
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["type"] == "BadRequestError" and events[-2]["error"]["code"] == 400
    assert "EngineCore" in events[-2]["error"]["message"]
    assert len(events) == 5


def test_slow_first(fake, client):
    fake.set_mode("slow_first", delay=0.3)
    t0 = time.monotonic()
    with client.stream("POST", fake.url + "/v1/completions", json=body()) as r:
        assert r.status_code == 200  # headers come at once
        lines = r.iter_lines()
        first = next(line for line in lines if line)
        t_first = time.monotonic() - t0
        assert list(lines)[-2:] == ["data: [DONE]", ""]
    assert t_first >= 0.3 and speech_tokens(first)


def test_mode_by_match_and_count(fake, client):
    fake.set_mode("http_error", status=503, match="FAIL")
    assert client.post(fake.url + "/v1/completions", json=body("please FAIL now")).status_code == 503
    _, events = stream(client, fake.url, body("fine"))
    assert events[-1] == "[DONE]"
    fake.set_mode("http_error", status=500, count=2)
    codes = [client.post(fake.url + "/v1/completions", json=body()).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    # the stats endpoint, for a server in another process (benchmarks/soak.py)
    stats = client.get(fake.url + "/_fake/stats").json()
    assert stats == {"requests": len(fake.requests), "active_streams": 0, "max_concurrent": 1}


def test_restore_puts_the_constructor_values_back(fake, client):
    fake.n_tokens, fake.rate, fake.api_key = 3, 50.0, "k"
    fake.set_mode("http_error", status=500)
    fake.hold()
    fake.restore()
    assert (fake.n_tokens, fake.rate, fake.api_key) == (N_TOKENS, 0.0, None) and fake.requests == []
    _, events = stream(client, fake.url, body())
    assert speech_tokens(text_of(events)) == expected_tokens("hello world", N_TOKENS)


# --- disconnects and concurrency ---------------------------------------------------------------------------------


def test_client_disconnect_is_recorded(fake, client):
    fake.rate, fake.n_tokens = 100.0, 1000
    with client.stream("POST", fake.url + "/v1/completions", json=body()) as r:
        it = r.iter_lines()
        for _ in range(3):
            next(it)
    t_close = time.monotonic()
    assert fake.wait_for(lambda: fake.requests[-1].cancelled, timeout=1.0)
    rec = fake.requests[-1]
    assert rec.end - t_close < 1.0 and 0 < rec.tokens_sent < 1000
    assert fake.wait_for(lambda: fake.active_streams == 0, timeout=1.0)


def test_concurrent_streams_counted(fake):
    fake.rate, fake.n_tokens = 200.0, 20  # ~0.1 s each

    def one(i: int) -> None:
        with httpx.Client(timeout=5.0) as c:
            _, events = stream(c, fake.url, body(f"prompt {i}"))
            assert speech_tokens(text_of(events)) == expected_tokens(f"prompt {i}", 20)

    fake.hold()  # park them so that all five are in flight at once
    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    assert fake.wait_for(lambda: fake.active_streams == 5, timeout=5.0)
    fake.release()
    for t in threads:
        t.join()
    assert fake.wait_for(lambda: fake.active_streams == 0, timeout=1.0)
    assert fake.max_concurrent == 5
    assert len(fake.requests) == 5 and not any(r.active or r.cancelled for r in fake.requests)


async def test_async_clients_and_wait_for_async(fake):
    fake.rate, fake.n_tokens = 400.0, 40
    async with httpx.AsyncClient(timeout=5.0) as c:

        async def one(i: int) -> list[int]:
            async with c.stream("POST", fake.url + "/v1/completions", json=body(f"p{i}")) as r:
                raw = (await r.aread()).decode()
            return speech_tokens(text_of(parse_sse(raw)))

        fake.hold()
        tasks = [asyncio.ensure_future(one(i)) for i in range(8)]
        assert await fake.wait_for_async(lambda: fake.active_streams == 8)
        fake.release()
        results = await asyncio.gather(*tasks)
        assert results == [expected_tokens(f"p{i}", 40) for i in range(8)]
        assert fake.max_concurrent == 8

        fake.set_mode("stall", after=1)
        task = asyncio.ensure_future(one(99))
        assert await fake.wait_for_async(lambda: fake.requests[-1] and fake.requests[-1].tokens_sent == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await fake.wait_for_async(lambda: fake.requests[-1].cancelled, timeout=1.0)


def test_stop_aborts_stalled_streams():
    fake = FakeVLLM(n_tokens=10).start()
    fake.set_mode("stall", after=2)
    errors = []

    def run() -> None:
        try:
            with httpx.Client(timeout=5.0) as c:
                stream(c, fake.url, body())
        except httpx.HTTPError as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    assert fake.wait_for(lambda: fake.requests and fake.requests[-1].tokens_sent == 2)
    t0 = time.monotonic()
    fake.stop()
    assert time.monotonic() - t0 < 2.0
    t.join(5)
    assert errors and fake.requests[-1].end is not None


def test_cli_serves(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    args = ["--port", str(port), "--rate", "0", "--n-tokens", "7", "--log-level", "warning"]
    proc = subprocess.Popen([sys.executable, "-m", "tools.fake_vllm", *args], cwd=tmp_path, env=env)
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert proc.poll() is None, f"the fake exited with {proc.returncode}"
            try:
                return httpx.get(url + "/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, 10, "the fake's /health")
        with httpx.Client(timeout=5) as c:
            _, events = stream(c, url, body())
        assert speech_tokens(text_of(events)) == expected_tokens("hello world", 7)
    finally:
        proc.terminate()
        proc.wait(5)


def test_openai_sdk_parses_the_stream(fake):
    openai = pytest.importorskip("openai")
    sdk = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
    chunks = list(sdk.completions.create(model="TTS-model", prompt="hi", stream=True, max_tokens=100))
    assert speech_tokens("".join(c.choices[0].text for c in chunks)) == expected_tokens("hi", N_TOKENS)
    assert chunks[-1].choices[0].finish_reason == "stop"
    fake.set_mode("error_event", after=2)
    with pytest.raises(openai.APIError):
        list(sdk.completions.create(model="TTS-model", prompt="hi", stream=True, max_tokens=100))
    fake.set_mode("http_error", status=400)
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        sdk.completions.create(model="TTS-model", prompt="hi", max_tokens=3, stream=True)


def test_small_responses_are_not_nagle_delayed(fake, client):
    # Two small writes per response (headers, body) must not wait for a delayed ACK (~40 ms each on Linux).
    client.get(fake.url + "/v1/models")
    t0 = time.monotonic()
    for _ in range(10):
        assert client.get(fake.url + "/v1/models").status_code == 200
    assert time.monotonic() - t0 < 0.3
