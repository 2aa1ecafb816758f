"""Word timings on the WebSocket paths, with a raw client: ElevenLabs' alignment (per chunk, and with
`sync_alignment=true` from the context's start) and our `timestamps` events; and interruptions: a context
closed mid-reply stops at once and sends nothing more of it."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import websockets

from app.prompts import speech_prompt
from tools.fake_vllm import FakeVLLM

SENTENCES = ["Hello there, this is a test.", "Harga dia lima ringgit sahaja.", "你好，我们明天见。"]


def eleven_url(base: str, output_format: str = "pcm_24000", extra: str = "") -> str:
    q = f"model_id=m&output_format={output_format}{extra}"
    return f"{base.replace('http://', 'ws://')}/v1/text-to-speech/jenny/multi-stream-input?{q}"


async def eleven_messages(url: str, sentences: list[str], voice_settings: dict | None = None) -> list[dict]:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"text": " ", "context_id": "c", "voice_settings": voice_settings or {}}))
        for s in sentences:
            await ws.send(json.dumps({"text": s + " ", "context_id": "c"}))
        await ws.send(json.dumps({"text": "", "context_id": "c", "flush": True}))
        await ws.send(json.dumps({"context_id": "c", "close_context": True}))
        messages = []
        while not (messages and messages[-1].get("isFinal")):
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    assert not [m for m in messages if "error" in m], messages
    return messages


def _segment_samples(fake: FakeVLLM) -> list[int]:
    return [len(fake.expected_tokens(r.prompt)) * 480 for r in fake.requests]


@pytest.mark.parametrize("sync", [False, True])
async def test_elevenlabs_alignment_tiles_the_delivered_audio(app_url: str, fake: FakeVLLM, sync: bool) -> None:
    extra = "&sync_alignment=true" if sync else ""
    messages = await eleven_messages(eleven_url(app_url, extra=extra), SENTENCES)
    seg_samples = _segment_samples(fake)
    assert len(seg_samples) == len(SENTENCES)
    ends_ms = [round(sum(seg_samples[: i + 1]) * 1000 / 24000) for i in range(len(seg_samples))]
    aligned = [m for m in messages if m.get("normalizedAlignment")]
    assert len(aligned) == len(SENTENCES)
    clock = 0  # pipecat's clock: the sum of the chunks' spans
    delivered = 0
    for m in messages:
        if m.get("audio"):
            delivered += len(base64.b64decode(m["audio"])) // 2
        if not m.get("normalizedAlignment"):
            continue
        k = aligned.index(m)
        norm, orig = m["normalizedAlignment"], m["alignment"]
        assert m["audio"] == "" and m["isFinal"] is False and m["contextId"] == "c"
        assert "".join(norm["chars"]) == SENTENCES[k] + " " == "".join(orig["chars"])
        for a in (norm, orig):
            assert len(a["chars"]) == len(a["charStartTimesMs"]) == len(a["charDurationsMs"])
            assert all(d >= 0 for d in a["charDurationsMs"])
            assert a["charStartTimesMs"] == sorted(a["charStartTimesMs"])
        start = norm["charStartTimesMs"][0]
        end = norm["charStartTimesMs"][-1] + norm["charDurationsMs"][-1]
        if sync:  # from the start of the context's audio: segment k begins where k-1 ended, to the ms
            assert start == (ends_ms[k - 1] if k else 0) and end == ends_ms[k]
        else:  # from the start of the chunk: the spans add up to the context's clock
            assert start == 0
            clock += end
            assert clock == ends_ms[k]
        # sent once the segment's audio is complete: all of its audio came before it
        assert delivered == sum(seg_samples[: k + 1])
    assert delivered == sum(seg_samples)


@pytest.mark.parametrize(("output_format", "rate", "speed"), [("pcm_8000", 8000, 1.0), ("pcm_22050", 22050, 1.25), ("pcm_16000", 16000, 0.8)])
async def test_elevenlabs_alignment_ends_where_the_delivered_audio_does(
    app_url: str, fake: FakeVLLM, output_format: str, rate: int, speed: float
) -> None:
    """Resampled and stretched: the last character ends at the last delivered sample (to the ms)."""
    messages = await eleven_messages(
        eleven_url(app_url, output_format, "&sync_alignment=true"), SENTENCES[:2], {"speed": speed}
    )
    samples = sum(len(base64.b64decode(m["audio"])) // 2 for m in messages if m.get("audio"))
    last = [m for m in messages if m.get("normalizedAlignment")][-1]["normalizedAlignment"]
    assert last["charStartTimesMs"][-1] + last["charDurationsMs"][-1] == round(samples * 1000 / rate)
    if speed == 1.0:
        assert samples == sum(_segment_samples(fake)) * rate // 24000


async def test_close_context_mid_reply_stops_it_and_sends_nothing_more_of_it(app_url: str, fake: FakeVLLM) -> None:
    fake.rate, fake.n_tokens = 25, 400  # 16 s of speech, generated in 16 s
    async with websockets.connect(eleven_url(app_url)) as ws:
        await ws.send(json.dumps({"text": "A long answer is coming, word by word, ", "context_id": "x"}))
        while not json.loads(await asyncio.wait_for(ws.recv(), 10)).get("audio"):
            pass
        await ws.send(json.dumps({"context_id": "x", "close_context": True}))  # the user spoke: interrupted
        after = []
        while not (after and after[-1].get("isFinal")):
            after.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        assert after[-1] == {"isFinal": True, "contextId": "x"}
        # a new reply on the same socket, while nothing more of x may come
        await ws.send(json.dumps({"text": "Yes? ", "context_id": "y", "flush": True}))
        await ws.send(json.dumps({"context_id": "y", "close_context": True}))
        later = []
        while not (later and later[-1].get("isFinal")):
            later.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert {m.get("contextId") for m in later} == {"y"}
    assert any(m.get("audio") for m in later)
    cancelled = [r for r in fake.requests if "A long answer" in r.prompt]
    assert len(cancelled) == 1 and cancelled[0].cancelled  # its generation stopped: the backend request closed
    # what came between the close and isFinal was already on its way: far less than the reply
    in_flight = sum(len(base64.b64decode(m["audio"])) for m in after if m.get("audio"))
    assert in_flight < 400 * 960 // 4


async def test_a_second_close_context_stops_a_flushed_reply(app_url: str, fake: FakeVLLM) -> None:
    """pipecat ends a reply with flush + close_context, and closes it again when the user interrupts it."""
    fake.rate, fake.n_tokens = 25, 400
    async with websockets.connect(eleven_url(app_url)) as ws:
        await ws.send(json.dumps({"text": "A long answer is coming. ", "context_id": "x", "flush": True}))
        await ws.send(json.dumps({"context_id": "x", "close_context": True}))
        while not json.loads(await asyncio.wait_for(ws.recv(), 10)).get("audio"):
            pass
        await ws.send(json.dumps({"context_id": "x", "close_context": True}))
        msgs = []
        while not (msgs and msgs[-1].get("isFinal")):
            msgs.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        await ws.send(json.dumps({"close_socket": True}))
        rest = [json.loads(m) async for m in ws]
    assert rest == []
    assert await fake.wait_for_async(lambda: fake.requests[-1].cancelled, timeout=10)  # once the fake sees it go
    assert not [m for m in msgs if m.get("normalizedAlignment")]  # the segment never completed: no timings


async def test_a_flushed_reply_closed_once_is_spoken_to_the_end(app_url: str, fake: FakeVLLM) -> None:
    messages = await eleven_messages(eleven_url(app_url), SENTENCES[:1])
    audio = b"".join(base64.b64decode(m["audio"]) for m in messages if m.get("audio"))
    assert len(audio) == len(fake.expected_tokens(speech_prompt("jenny", SENTENCES[0]))) * 960


def ours_url(base: str) -> str:
    return f"{base.replace('http://', 'ws://')}/v1/audio/speech/stream"


@pytest.mark.parametrize(("timestamps", "sample_rate", "speed"), [("word", None, 1.0), ("char", 8000, 1.5)])
async def test_our_protocol_sends_timestamps_per_segment(
    app_url: str, fake: FakeVLLM, timestamps: str, sample_rate: int | None, speed: float
) -> None:
    config = {"type": "config", "voice": "jenny", "timestamps": timestamps, "speed": speed}
    if sample_rate:
        config["sample_rate"] = sample_rate
    rate = sample_rate or 24000
    async with websockets.connect(ours_url(app_url)) as ws:
        await ws.send(json.dumps(config))
        for s in SENTENCES:
            await ws.send(json.dumps({"type": "text", "text": s + " "}))
        await ws.send(json.dumps({"type": "close"}))
        events, samples, at = [], 0, []
        async for m in ws:
            if isinstance(m, bytes):
                samples += len(m) // 2
                continue
            ev = json.loads(m)
            events.append(ev)
            if ev["type"] == "timestamps":
                at.append(samples)  # the audio delivered when it came
    stamps = [e for e in events if e["type"] == "timestamps"]
    assert [e["index"] for e in stamps] == [0, 1, 2]
    assert [e["text"] for e in stamps] == SENTENCES
    kinds = [e["type"] for e in events]
    assert all(kinds[kinds.index("timestamps", i) + 1] == "segment.done" for i in range(len(kinds)) if kinds[i] == "timestamps")
    words = [w for e in stamps for w in e["words"]]
    assert "".join(w["word"] for w in words) == "".join("".join(SENTENCES).split())
    assert all(e["source"] == "estimated" for e in stamps)
    assert all(0 <= w["start"] <= w["end"] for w in words)
    assert [w["start"] for w in words] == sorted(w["start"] for w in words)
    for k, e in enumerate(stamps):
        assert e["start"] == (stamps[k - 1]["end"] if k else 0)
        assert all(e["start"] <= w["start"] <= w["end"] <= e["end"] for w in e["words"])
        assert ("characters" in e) == (timestamps == "char")
    assert stamps[-1]["end"] == round(samples / rate, 3)  # the last segment ends with the delivered audio
    if speed == 1.0:  # each segment's end: its tokens' samples, exactly
        seg = _segment_samples(fake)
        assert [round(e["end"] * rate) for e in stamps] == [sum(seg[: k + 1]) for k in range(3)]
        assert at == [sum(seg[: k + 1]) for k in range(3)]  # sent once the segment's audio was all delivered


async def test_our_protocol_without_timestamps_sends_none(app_url: str) -> None:
    async with websockets.connect(ours_url(app_url)) as ws:
        await ws.send(json.dumps({"type": "config", "voice": "jenny"}))
        await ws.send(json.dumps({"type": "text", "text": "Hello there. "}))
        await ws.send(json.dumps({"type": "close"}))
        kinds = [json.loads(m)["type"] async for m in ws if isinstance(m, str)]
    assert "timestamps" not in kinds and kinds[-1] == "done"


async def test_our_cancel_stops_the_reply_at_once(app_url: str, fake: FakeVLLM) -> None:
    fake.rate, fake.n_tokens = 25, 400
    async with websockets.connect(ours_url(app_url)) as ws:
        await ws.send(json.dumps({"type": "config", "voice": "jenny", "timestamps": "word"}))
        await ws.send(json.dumps({"type": "text", "text": "A long answer is coming, word by word, ", "flush": True}))
        while not isinstance(await asyncio.wait_for(ws.recv(), 10), bytes):
            pass
        await ws.send(json.dumps({"type": "cancel"}))
        rest = [m async for m in ws]
        assert ws.close_code == 1000
    texts = [json.loads(m) for m in rest if isinstance(m, str)]
    assert texts[-1]["type"] == "done"
    assert not [t for t in texts if t["type"] in ("timestamps", "segment.done")]
    assert sum(len(m) for m in rest if isinstance(m, bytes)) < 400 * 960 // 4
    assert await fake.wait_for_async(lambda: fake.requests[-1].cancelled, timeout=10)  # once the fake sees it go
