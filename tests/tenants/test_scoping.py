"""Tenant scoping (issue 34, item 2), on a real SQLite file and the real PostgreSQL server: each tenant sees and
speaks only its own saved voices; for another tenant a voice is exactly a voice that does not exist, on every
path (the voice routes, the OpenAI SDK, ElevenLabs' HTTP route, both WebSockets with the key in a header or a
message); built-in voices are everyone's; consent records name the key; vLLM's prefix cache is salted per
tenant; a store made by main before tenants keeps its voices, now the default tenant's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import openai
import pytest
import websockets

from app.service.principal import cache_salt
from app.service.voice_store import VoiceStore
from app.settings import Settings
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.voices.test_migrations import OLD_VOICES, make_old_main_store
from tests.voices.test_saved_voices import TEXT, TRANSCRIPT, parts, wav_bytes
from tools.fake_vllm import FakeVLLM
from tools.harness import serve

NAME = "brand-voice"


def save(url: str, key: str, name: str = NAME, freq: float = 220.0) -> httpx.Response:
    data = {"name": name, "text": TRANSCRIPT, "consent": "true", "consent_by": "Aminah binti Ali"}
    files = {"audio": ("clip.wav", wav_bytes(freq=freq), "audio/wav")}
    return httpx.post(f"{url}/v1/audio/voices", data=data, files=files, headers=bearer(key), timeout=60)


def saved_names(url: str, key: str) -> list[str]:
    voices = httpx.get(f"{url}/v1/audio/voices", headers=bearer(key), timeout=10).json()["voices"]
    return [v["id"] for v in voices if v.get("type") == "saved"]


async def every_path(url: str, key: str, name: str) -> dict[str, object]:
    """What each path that names a voice answers `key` for `name`: status and body, or the WebSocket's reply."""
    seen: dict[str, object] = {}
    for method in ("GET", "DELETE"):
        resp = httpx.request(method, f"{url}/v1/audio/voices/{name}", headers=bearer(key), timeout=10)
        seen[f"{method} voice"] = (resp.status_code, resp.json())
    try:
        openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0).audio.speech.create(
            model="tts-1", voice=name, input=TEXT, response_format="pcm"
        )
        seen["openai sdk"] = "spoken"
    except openai.APIStatusError as exc:
        seen["openai sdk"] = (exc.status_code, exc.body)
    resp = httpx.post(f"{url}/v1/text-to-speech/{name}/with-timestamps", json={"text": TEXT}, timeout=30,
                      headers={"xi-api-key": key})  # fmt: skip
    seen["elevenlabs http"] = (resp.status_code, resp.json() if resp.status_code != 200 else "spoken")
    ws = url.replace("http://", "ws://")
    async with websockets.connect(f"{ws}/v1/audio/speech/stream", additional_headers=bearer(key)) as sock:
        await sock.send(json.dumps({"type": "config", "voice": name, "response_format": "pcm"}))
        seen["our websocket"] = json.loads(await asyncio.wait_for(sock.recv(), 10))
    eleven = f"{ws}/v1/text-to-speech/{name}/stream-input?model_id=eleven_turbo_v2_5&output_format=pcm_24000"
    try:
        async with websockets.connect(eleven, additional_headers={"xi-api-key": key}) as sock:
            seen["elevenlabs websocket"] = "accepted"
    except websockets.InvalidStatus as exc:
        seen["elevenlabs websocket"] = (exc.response.status_code, json.loads(exc.response.body))
    async with websockets.connect(eleven) as sock:  # the key in the first message: the voice looked up then
        await sock.send(json.dumps({"text": " ", "xi_api_key": key}))
        seen["elevenlabs websocket, key in a message"] = json.loads(await asyncio.wait_for(sock.recv(), 10))
    return seen


def _without_ids(seen: dict[str, object]) -> dict[str, object]:
    """The replies without what differs between any two sessions (our WebSocket's session id)."""
    event = seen["our websocket"]
    return seen | {"our websocket": {k: v for k, v in event.items() if k not in ("session_id", "id")}}  # type: ignore[union-attr]


async def test_another_tenants_voice_is_exactly_a_missing_one_on_every_path(
    settings_for: Callable[..., Settings], fake: FakeVLLM, store_url: str
) -> None:
    with serve(settings_for(voice_store_url=store_url, api_key=ADMIN), parts()) as url:
        a, b = new_key(url, "brand-a"), new_key(url, "brand-b")
        assert save(url, a["key"]).status_code == 201
        assert saved_names(url, a["key"]) == [NAME] and saved_names(url, b["key"]) == []
        assert saved_names(url, ADMIN) == []  # the default tenant's: none

        as_b = await every_path(url, b["key"], NAME)  # A's voice, asked by B
        assert saved_names(url, a["key"]) == [NAME]  # B's DELETE removed nothing
        assert httpx.delete(f"{url}/v1/audio/voices/{NAME}", headers=bearer(a["key"])).status_code == 204
        as_a_missing = await every_path(url, a["key"], NAME)  # the same name, now missing for A itself
        assert _without_ids(as_b) == _without_ids(as_a_missing)
        assert as_b["GET voice"][0] == 404 and as_b["openai sdk"][0] == 400  # type: ignore[index]
        assert as_b["openai sdk"][1]["code"] == "invalid_voice"  # type: ignore[index]
        assert "403" not in json.dumps(as_b)


async def test_two_tenants_each_speak_their_own_voice_of_one_name(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path
) -> None:
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        a, b = new_key(url, "brand-a"), new_key(url, "brand-b")
        assert save(url, a["key"], freq=300).status_code == 201
        assert save(url, b["key"], freq=700).status_code == 201  # the same name: each tenant's own
        prompts, salts = {}, {}
        for who, key in (("a", a["key"]), ("b", b["key"]), ("admin", ADMIN)):
            voice = NAME if who != "admin" else "jenny"  # built-in voices are everyone's
            sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            sdk.audio.speech.create(model="tts-1", voice=voice, input=TEXT, response_format="pcm")
            prompts[who], salts[who] = fake.requests[-1].body["prompt"], fake.requests[-1].body["cache_salt"]
            if who != "admin":
                meta = httpx.get(f"{url}/v1/audio/voices/{NAME}", headers=bearer(key)).json()
                assert meta["tenant"] == f"brand-{who}" and meta["consent"]["key"] == (a if who == "a" else b)["id"]
                assert meta["consent"]["by"] == "Aminah binti Ali" and meta["consent"]["at"].endswith("Z")
        assert prompts["a"] != prompts["b"]  # two references: each tenant's own clip
        assert salts == {"a": cache_salt("brand-a"), "b": cache_salt("brand-b"), "admin": cache_salt("default")}
        assert len(set(salts.values())) == 3
        sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=b["key"], max_retries=0)
        sdk.audio.speech.create(model="tts-1", voice="jenny", input=TEXT, response_format="pcm")
        assert fake.requests[-1].body["cache_salt"] == salts["b"]  # per tenant, not per voice


async def test_a_store_made_by_main_keeps_its_voices_for_the_default_tenant(
    settings_for: Callable[..., Settings], fake: FakeVLLM, store_url: str
) -> None:
    make_old_main_store(store_url, OLD_VOICES)
    with serve(settings_for(voice_store_url=store_url, api_key=ADMIN), parts()) as url:
        names = sorted(v.name for v in OLD_VOICES)
        assert saved_names(url, ADMIN) == names  # API_KEY: the default tenant's, as before
        other = new_key(url, "brand-a")
        assert saved_names(url, other["key"]) == []
        assert httpx.get(f"{url}/v1/audio/voices/aminah", headers=bearer(other["key"])).status_code == 404
        meta = httpx.get(f"{url}/v1/audio/voices/aminah", headers=bearer(ADMIN)).json()
        assert meta["tenant"] == "default" and meta["consent"]["key"] == ""  # saved before keys
    store = VoiceStore(store_url)
    await store.open()
    try:
        for v in OLD_VOICES:
            assert await store.get(v.name) == v  # intact, tokens and all
            assert await store.get(v.name, "brand-a") is None
    finally:
        await store.close()


@pytest.mark.parametrize("tenant_b_first", [False, True])
async def test_reference_encodings_are_not_shared_between_tenants(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tenant_b_first: bool
) -> None:
    """The encoder's cache (same clip + transcript) is per tenant: a hit would tell one tenant, by its timing,
    that another uploaded that clip."""
    with serve(settings_for(api_key=ADMIN, reference_cache_size=8), parts()) as url:
        a, b = new_key(url, "brand-a"), new_key(url, "brand-b")
        order = (b, a) if tenant_b_first else (a, b)
        for key in (*order, order[0]):
            data = {"reference_text": TRANSCRIPT, "generate_text": TEXT, "stream": "false"}
            files = {"reference_audio": ("c.wav", wav_bytes())}
            resp = httpx.post(f"{url}/v1/audio/vc", data=data, files=files, headers=bearer(key["key"]), timeout=60)
            assert resp.status_code == 200, resp.text
        metrics = httpx.get(f"{url}/metrics", headers=bearer(ADMIN)).text
        assert _counter(metrics, 'tts_reference_cache_total{result="miss"}') == 2
        assert _counter(metrics, 'tts_reference_cache_total{result="hit"}') == 1


def _counter(metrics: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name))
