"""A new output format is one entry in one place (app.audio.registry.register): a format defined here, registered
in a fresh interpreter before the app is imported, is offered and delivered on every path: HTTP streamed,
complete, SSE and JSON with timings, our WebSocket, ElevenLabs' WebSocket and ElevenLabs' HTTP with timestamps,
and the OpenAPI schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tools.harness import REPO

SCRIPT = textwrap.dedent(
    '''
    import asyncio, base64, json, struct, sys

    from app.audio import formats
    from app.audio.pcm import S16LE
    from app.audio.registry import ElevenLabsName, OutputFormat, register


    class FramedEncoder(formats.StreamEncoder):
        """s16le samples, each chunk framed by its sample count (4 bytes, little endian)."""

        def encode(self, pcm):
            data = pcm.astype("<i2").tobytes()
            return struct.pack("<I", len(pcm)) + data if len(pcm) else b""

        def finish(self):
            return b""


    register(OutputFormat(
        "framed", "audio/x-framed", "framed", FramedEncoder, inline=True, encodings=(S16LE,),
        elevenlabs={"framed_16000": ElevenLabsName(16_000)},
    ))

    import httpx, websockets  # noqa: E402

    from app.main import Components  # noqa: E402  # imported after the format is registered
    from app.prompts import speech_prompt  # noqa: E402
    from app.settings import Settings  # noqa: E402
    from tests.conftest import SETTINGS  # noqa: E402
    from tools.fake_vllm import FakeVLLM  # noqa: E402
    from tools.harness import LocalCodec, PassthroughNormalizer, serve  # noqa: E402

    TEXT = "Hello from a new format."


    def samples(data: bytes) -> int:
        """The samples of a framed stream, every frame checked whole."""
        n, pos = 0, 0
        while pos < len(data):
            (count,) = struct.unpack_from("<I", data, pos)
            pos += 4 + 2 * count
            n += count
        assert pos == len(data), "a frame cut short"
        return n


    async def ws_ours(base: str) -> int:
        async with websockets.connect(base.replace("http", "ws") + "/v1/audio/speech/stream") as ws:
            await ws.send(json.dumps({"type": "config", "voice": "jenny", "response_format": "framed"}))
            await ws.send(json.dumps({"type": "text", "text": TEXT}))
            await ws.send(json.dumps({"type": "close"}))
            audio = b"".join([m async for m in ws if isinstance(m, bytes)])
        return samples(audio)


    async def ws_elevenlabs(base: str) -> int:
        url = base.replace("http", "ws") + "/v1/text-to-speech/jenny/stream-input?output_format=framed_16000"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"text": " "}))
            await ws.send(json.dumps({"text": TEXT, "flush": True}))
            await ws.send(json.dumps({"text": ""}))
            msgs = [json.loads(m) async for m in ws]
        return samples(b"".join(base64.b64decode(m["audio"]) for m in msgs if m.get("audio")))


    def http_paths(base: str) -> dict:
        out = {}
        body = {"input": TEXT, "voice": "jenny", "response_format": "framed"}
        with httpx.Client(base_url=base, timeout=60) as c:
            r = c.post("/v1/audio/speech", json=body)
            out["streamed"] = (r.headers["content-type"], samples(r.content))
            out["complete"] = samples(c.post("/v1/audio/speech", json=body | {"stream": False}).content)
            r = c.post("/v1/audio/speech", json=body | {"stream_format": "sse"})
            events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
            out["sse"] = samples(b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta"))
            j = c.post("/v1/audio/speech", json=body | {"timestamps": "word"}).json()
            out["timed"] = (j["content_type"], samples(base64.b64decode(j["audio"])), len(j["words"]))
            j = c.post("/v1/text-to-speech/jenny/with-timestamps?output_format=framed_16000", json={"text": TEXT}).json()
            out["elevenlabs_http"] = (samples(base64.b64decode(j["audio_base64"])), len(j["alignment"]["characters"]))
            lines = c.post("/v1/text-to-speech/jenny/stream/with-timestamps?output_format=framed_16000", json={"text": TEXT})
            parts = [json.loads(x) for x in lines.text.splitlines()]
            out["elevenlabs_http_stream"] = samples(b"".join(base64.b64decode(p["audio_base64"]) for p in parts))
            schema = c.get("/openapi.json").json()
            out["schema"] = "framed" in json.dumps(schema["components"]["schemas"]["SpeechRequest"])
        return out


    with FakeVLLM(n_tokens=40, rate=0) as fake:
        settings = Settings(_env_file=None, **({"tts_api": fake.url} | SETTINGS))
        with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as base:
            result = http_paths(base)
            result["ws_ours"] = asyncio.run(ws_ours(base))
            result["ws_elevenlabs"] = asyncio.run(ws_elevenlabs(base))
        result["tokens"] = len(fake.expected_tokens(speech_prompt("jenny", TEXT)))
    print("RESULT " + json.dumps(result))
    '''
)


def test_a_format_defined_here_reaches_every_path() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT ") :])
    at_24k, at_16k = r["tokens"] * 480, r["tokens"] * 320  # every token's audio, resampled; nothing dropped
    assert r["tokens"] > 0
    assert r["streamed"] == ["audio/x-framed", at_24k]
    assert r["complete"] == r["sse"] == r["ws_ours"] == at_24k
    assert r["timed"][:2] == ["audio/x-framed", at_24k] and r["timed"][2] > 0
    assert r["ws_elevenlabs"] == r["elevenlabs_http_stream"] == at_16k
    assert r["elevenlabs_http"][0] == at_16k and r["elevenlabs_http"][1] > 0
    assert r["schema"] is True
