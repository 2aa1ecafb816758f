"""Context cost benchmark (prints, asserts nothing): WebSocket streaming with and without the previous segment.

Streams a reply word by word over `/v1/audio/speech/stream` to the app with the fake vLLM (tokens paced at
`--rate` per second) and the stand-in codec, once with `context` on and once off, and prints per segment the
prompt size (characters, and tokens by the fake's stand-in tokenizer: one per special token, word or
punctuation mark) and the time from `segment.started` to its first audio, then the session's first audio after
the first word. The fake does not model prefill time, so this measures our side (prompt building, sequencing);
on a real vLLM, add prefill of the extra prompt tokens (see docs/performance.md for the machine's figures).

    python -m benchmarks.context_bench [--rate 200] [--tokens 100] [--max-context 250]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time

import websockets

from app.main import Components
from app.settings import Settings
from tools.fake_vllm import FakeVLLM, count_prompt_tokens
from tools.harness import LocalCodec, PassthroughNormalizer, serve

REPLY = (
    "Thanks for calling, this is the billing desk. I can see your last invoice from March. "
    "It was paid on the fifth, so nothing is overdue. Is there anything else I can help you with today?"
)


async def session(url: str, context: bool, pause: float) -> dict:
    seg_start: dict[int, float] = {}
    ttfa: dict[int, float] = {}
    current = None
    async with websockets.connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream") as ws:
        await ws.send(json.dumps({"type": "config", "context": context}))
        await ws.recv()

        async def send() -> None:
            for word in REPLY.split():
                await ws.send(json.dumps({"type": "text", "text": word + " "}))
                await asyncio.sleep(pause)
            await ws.send(json.dumps({"type": "close"}))

        t0 = time.perf_counter()
        first_audio = None
        sender = asyncio.create_task(send())
        async for message in ws:
            now = time.perf_counter()
            if isinstance(message, bytes):
                first_audio = first_audio or now - t0
                if current is not None and current not in ttfa:
                    ttfa[current] = now - seg_start[current]
                continue
            event = json.loads(message)
            if event["type"] == "segment.started":
                current = event["index"]
                seg_start[current] = now
            elif event["type"] == "done":
                usage = event["usage"]
        await sender
    return {"ttfa": ttfa, "first_audio": first_audio, "usage": usage}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="fake vLLM tokens/s per stream")
    parser.add_argument("--tokens", type=int, default=100, help="speech tokens per segment")
    parser.add_argument("--max-context", type=int, default=250, help="STREAM_CONTEXT_MAX_TOKENS")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between words (the LLM's pace)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, rate {args.rate:g} tok/s, {args.tokens} tok/segment")
    with FakeVLLM(n_tokens=args.tokens, rate=args.rate) as fake:
        settings = Settings(_env_file=None, tts_api=fake.url, stream_context_max_tokens=args.max_context)
        with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
            for context in (False, True):
                fake.reset()
                result = asyncio.run(session(url, context, args.pause))
                prompts = [r.prompt for r in fake.requests]
                print(f"\ncontext {'on' if context else 'off'}: first audio {result['first_audio'] * 1e3:.0f} ms "
                      f"after the first word; usage {result['usage']}")
                print("  seg  prompt_chars  prompt_tokens  ttfa_ms")
                for i, p in enumerate(prompts):
                    print(f"  {i:3d}  {len(p):12d}  {count_prompt_tokens(p):13d}  {result['ttfa'].get(i, float('nan')) * 1e3:7.1f}")
                later = [result["ttfa"][i] for i in range(1, len(prompts)) if i in result["ttfa"]]
                if later:
                    print(f"  median ttfa of segments 2+: {statistics.median(later) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
