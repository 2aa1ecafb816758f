"""Acceptance line 1 of issue 34 with the ElevenLabs clients: two tenants through the official ElevenLabs SDK, the
LiveKit plugin (`livekit-plugins-elevenlabs`) and pipecat's `ElevenLabsTTSService`, each unchanged but for its
URL and key. Each tenant lists and speaks only its own saved voices (one name saved by both is each one's own
clip); the other tenant's voice is exactly a voice that does not exist, on every path these clients take
(ElevenLabs' HTTP routes, the multi-stream WebSocket). The OpenAI SDK, our WebSocket and the voice routes are in
test_scoping.py; `/v1/audio/vc` names no saved voice (its reference is uploaded), and its encoder's cache is per
tenant (test_scoping.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from elevenlabs.client import ElevenLabs
from elevenlabs.core import ApiError

from app.prompts import TURN_START
from app.settings import Settings
from tests.clients.test_elevenlabs_livekit import SENTENCES
from tests.clients.test_elevenlabs_livekit import _stream as livekit_stream
from tests.clients.test_elevenlabs_pipecat import speak as pipecat_speak
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.tenants.test_scoping import save, saved_names
from tests.voices.test_saved_voices import TEXT, parts
from tools.fake_vllm import FakeVLLM
from tools.harness import serve

pytest.importorskip("livekit.plugins.elevenlabs")
pytest.importorskip("pipecat.services.elevenlabs.tts")

SHARED = "brand-voice"  # saved by both tenants, each with its own clip
ONLY_A = "a-only-voice"  # saved by tenant a only


def reference(prompt: str) -> str:
    """A cloned voice's prompt without its last turn (the text spoken): the saved reference it was prompted with."""
    return prompt[: prompt.rindex(TURN_START)]


def sdk_answers(url: str, key: str, name: str) -> dict[str, object]:
    """What the ElevenLabs SDK's calls that name a voice get for `name`."""
    client = ElevenLabs(api_key=key, base_url=url, timeout=60)
    seen: dict[str, object] = {"listed": name in {v.voice_id for v in client.voices.get_all().voices}}
    calls = {
        "voices.get": lambda: client.voices.get(name).voice_id,
        "convert": lambda: len(b"".join(client.text_to_speech.convert(name, text=TEXT, output_format="pcm_24000"))) > 0,
        "stream": lambda: len(b"".join(client.text_to_speech.stream(name, text=TEXT, output_format="pcm_24000"))) > 0,
        "with_timestamps": lambda: bool(client.text_to_speech.convert_with_timestamps(name, text=TEXT).audio_base_64),
    }
    for call, run in calls.items():
        try:
            seen[call] = ("ok", run())
        except ApiError as exc:
            seen[call] = (exc.status_code, exc.body)
    return seen


async def plugin_answers(url: str, key: str, name: str) -> dict[str, object]:
    """What LiveKit's plugin and pipecat's service get for `name` (the error's text, or that they spoke)."""
    seen: dict[str, object] = {}
    try:
        frames = await asyncio.wait_for(livekit_stream(url, key, name, encoding="pcm_24000"), 120)
        seen["livekit"] = ("spoke", bool(frames))
    except Exception as exc:  # the plugin's APIError after its retries
        seen["livekit"] = (type(exc).__name__, getattr(exc, "status_code", None), getattr(exc, "body", None))
    audio, errors = await asyncio.wait_for(pipecat_speak(url, TEXT, name, api_key=key), 120)
    seen["pipecat"] = ("spoke" if audio else "silent", [e.error for e in errors])  # a refused connection: silent
    return seen


async def test_two_tenants_through_the_elevenlabs_clients_each_see_and_speak_only_their_own_voices(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    fake.n_tokens = 25
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        a, b = new_key(url, "brand-a")["key"], new_key(url, "brand-b")["key"]
        assert save(url, a, SHARED, freq=300).status_code == 201
        assert save(url, b, SHARED, freq=700).status_code == 201
        assert save(url, a, ONLY_A, freq=500).status_code == 201
        assert saved_names(url, a) == sorted([SHARED, ONLY_A]) and saved_names(url, b) == [SHARED]

        own: dict[str, str] = {}  # each tenant's reference for SHARED, as the OpenAI SDK speaks it
        for who, key in (("a", a), ("b", b)):
            openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0).audio.speech.create(
                model="tts-1", voice=SHARED, input=TEXT, response_format="pcm"
            )
            own[who] = reference(fake.requests[-1].prompt)
        assert own["a"] != own["b"]

        for who, key in (("a", a), ("b", b)):  # each client speaks the tenant's own clip of the shared name
            start = len(fake.requests)
            sdk = sdk_answers(url, key, SHARED)
            assert sdk["listed"] and all(v[0] == "ok" for k, v in sdk.items() if k != "listed"), sdk
            assert (await plugin_answers(url, key, SHARED)) == {"livekit": ("spoke", True), "pipecat": ("spoke", [])}
            prompts = [r.prompt for r in fake.requests[start:]]
            assert len(prompts) >= 3 + len(SENTENCES) + 1
            assert {reference(p) for p in prompts} == {own[who]}, who

        b_asks = sdk_answers(url, b, ONLY_A), await plugin_answers(url, b, ONLY_A)  # a's voice, asked by b
        assert b_asks[0]["listed"] is False and b_asks[0]["voices.get"][0] == 404  # type: ignore[index]
        assert b_asks[0]["convert"][0] == 400 and b_asks[1]["pipecat"][0] == "silent"  # type: ignore[index]
        assert b_asks[1]["livekit"][:2] == ("APIStatusError", 400)  # type: ignore[index]  # the handshake refused
        assert httpx.delete(f"{url}/v1/audio/voices/{ONLY_A}", headers=bearer(a), timeout=10).status_code == 204
        missing = sdk_answers(url, b, ONLY_A), await plugin_answers(url, b, ONLY_A)  # now a name nobody has
        assert b_asks == missing, (b_asks, missing)
        assert "403" not in repr(b_asks)
