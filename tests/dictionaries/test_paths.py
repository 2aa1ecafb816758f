"""A dictionary on every path that takes text (issue 33, item 1; issue 34, item 2), on a real SQLite file and the
real PostgreSQL server: `/v1/audio/speech`, `/v1/audio/vc` (a form field), `/v1/audio/normalize`, our WebSocket's
config and the ElevenLabs WebSocket's first message each speak the alias (the prompt vLLM received) and name a
phoneme rule met; another tenant's dictionary is exactly a missing one on every route and every path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
import websockets

from app.prompts import SPEECH_START, TURN_START, speech_prompt
from app.settings import Settings
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.voices.test_saved_voices import parts, wav_bytes
from tools.fake_vllm import FakeVLLM
from tools.harness import serve

RULES = [
    {"type": "alias", "string_to_replace": "KL", "alias": "Kuala Lumpur"},
    {"type": "phoneme", "string_to_replace": "tomato", "phoneme": "təˈmɑːtəʊ", "alphabet": "ipa"},
]
TEXT = "A tomato from KL."
SPOKEN = "A tomato from Kuala Lumpur."


@pytest.fixture
def url(settings_for: Callable[..., Settings], store_url: str) -> Iterator[str]:
    with serve(settings_for(voice_store_url=store_url, api_key=ADMIN), parts()) as base:
        yield base


def create(url: str, key: str = ADMIN, rules: list | None = None) -> dict:
    body = {"name": "brands", "rules": RULES if rules is None else rules}
    r = httpx.post(f"{url}/v1/pronunciation-dictionaries/add-from-rules", json=body, headers=bearer(key), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def locators(dictionary_id: str) -> list[dict]:
    return [{"pronunciation_dictionary_id": dictionary_id, "version_id": None}]


def test_speech_vc_and_normalize_read_with_the_dictionary(url: str, fake: FakeVLLM) -> None:
    made = create(url)
    body = {
        "input": TEXT,
        "voice": "jenny",
        "response_format": "pcm",
        "pronunciation_dictionary_locators": locators(made["id"]),
    }
    r = httpx.post(f"{url}/v1/audio/speech", json=body, headers=bearer(ADMIN), timeout=60)
    assert r.status_code == 200 and r.headers["x-unused-settings"] == "phoneme:tomato"
    assert fake.requests[-1].prompt == speech_prompt("jenny", SPOKEN)

    plain = httpx.post(f"{url}/v1/audio/speech", json=body | {"pronunciation_dictionary_locators": None},
                       headers=bearer(ADMIN), timeout=60)  # fmt: skip
    assert plain.status_code == 200 and "x-unused-settings" not in plain.headers
    assert fake.requests[-1].prompt == speech_prompt("jenny", TEXT)  # no dictionary: today's prompt

    form = {"reference_text": "Saya suka makan nasi lemak.", "generate_text": TEXT, "response_format": "pcm",
            "pronunciation_dictionary_locators": json.dumps(locators(made["id"]))}  # fmt: skip
    files = {"reference_audio": ("clip.wav", wav_bytes(), "audio/wav")}
    r = httpx.post(f"{url}/v1/audio/vc", data=form, files=files, headers=bearer(ADMIN), timeout=60)
    assert r.status_code == 200 and r.headers["x-unused-settings"] == "phoneme:tomato"
    prompt = fake.requests[-1].prompt
    assert prompt.startswith(f"{TURN_START}Saya suka makan nasi lemak.{SPEECH_START}")  # the transcript as written
    assert prompt.endswith(f"{TURN_START}{SPOKEN}{SPEECH_START}")

    r = httpx.post(f"{url}/v1/audio/normalize", json={"input": TEXT, "pronunciation_dictionary_locators": locators(made["id"])},
                   headers=bearer(ADMIN), timeout=30)  # fmt: skip
    assert r.json()["normalized"] == SPOKEN


async def test_our_websocket_config_and_elevenlabs_first_message(url: str, fake: FakeVLLM) -> None:
    made = create(url)
    ws_url = url.replace("http://", "ws://")
    async with websockets.connect(f"{ws_url}/v1/audio/speech/stream", additional_headers=bearer(ADMIN)) as ws:
        config = {"type": "config", "voice": "jenny", "response_format": "pcm", "audio_frames": "base64",
                  "pronunciation_dictionary_locators": locators(made["id"])}  # fmt: skip
        await ws.send(json.dumps(config))
        await ws.send(json.dumps({"type": "text", "text": TEXT}))
        await ws.send(json.dumps({"type": "close"}))
        events = [json.loads(m) async for m in ws]
    started = [e for e in events if e["type"] == "segment.started"]
    assert [(e["text"], e["normalized"], e.get("unused")) for e in started] == [(TEXT, SPOKEN, ["phoneme:tomato"])]
    assert fake.requests[-1].prompt == speech_prompt("jenny", SPOKEN)

    query = "model_id=eleven_turbo_v2_5&output_format=pcm_24000&sync_alignment=true"
    eleven = f"{ws_url}/v1/text-to-speech/jenny/multi-stream-input?{query}"
    async with websockets.connect(eleven, additional_headers={"xi-api-key": ADMIN}) as ws:
        await ws.send(
            json.dumps({"text": " ", "context_id": "c1", "pronunciation_dictionary_locators": locators(made["id"])})
        )
        await ws.send(json.dumps({"text": TEXT, "context_id": "c1", "flush": True}))
        await ws.send(json.dumps({"text": "KL again. ", "context_id": "c2", "flush": True}))  # c2: no dictionary
        await ws.send(json.dumps({"context_id": "c1", "close_context": True}))
        await ws.send(json.dumps({"context_id": "c2", "close_context": True}))
        messages = await asyncio.wait_for(_until_both_final(ws), 30)
    aligned = {m["contextId"]: m for m in messages if m.get("alignment")}
    assert "".join(aligned["c1"]["alignment"]["chars"]).strip() == TEXT  # with the first message's " "
    assert "".join(aligned["c1"]["normalizedAlignment"]["chars"]).strip() == SPOKEN
    assert aligned["c1"]["unusedSettings"] == ["phoneme:tomato"] and "unusedSettings" not in aligned["c2"]
    prompts = {r.prompt for r in fake.requests[-2:]}
    assert prompts == {speech_prompt("jenny", SPOKEN), speech_prompt("jenny", "KL again.")}


async def _until_both_final(ws: websockets.ClientConnection) -> list[dict]:
    out, finals = [], set()
    while finals != {"c1", "c2"}:
        m = json.loads(await ws.recv())
        assert "error" not in m, m
        out.append(m)
        if m.get("isFinal"):
            finals.add(m["contextId"])
    return out


def _answers(url: str, key: str, dictionary_id: str) -> dict[str, object]:
    """What every route and speech path answers `key` for `dictionary_id`, the id itself written as `<id>`."""
    base, h = f"{url}/v1/pronunciation-dictionaries/{dictionary_id}", bearer(key)
    calls = {
        "get": httpx.get(base, headers=h),
        "patch": httpx.patch(base, json={"name": "mine now"}, headers=h),
        "add-rules": httpx.post(f"{base}/add-rules", json={"rules": RULES[:1]}, headers=h),
        "remove-rules": httpx.post(f"{base}/remove-rules", json={"rule_strings": ["KL"]}, headers=h),
        "set-rules": httpx.post(f"{base}/set-rules", json={"rules": []}, headers=h),
        "download": httpx.get(f"{base}/v1/download", headers=h),
        "delete": httpx.delete(base, headers=h),
        "speech": httpx.post(f"{url}/v1/audio/speech", headers=h, timeout=30, json={
            "input": TEXT, "voice": "jenny", "pronunciation_dictionary_locators": locators(dictionary_id)}),
        "elevenlabs": httpx.post(f"{url}/v1/text-to-speech/jenny", headers={"xi-api-key": key}, timeout=30, json={
            "text": TEXT, "pronunciation_dictionary_locators": locators(dictionary_id)}),
        "vc": httpx.post(f"{url}/v1/audio/vc", headers=h, timeout=30, files={"reference_audio": ("a.wav", wav_bytes())},
                         data={"reference_text": "Saya suka makan nasi lemak.", "generate_text": TEXT,
                               "pronunciation_dictionary_locators": json.dumps(locators(dictionary_id))}),
    }  # fmt: skip
    return {k: (r.status_code, r.text.replace(dictionary_id, "<id>")) for k, r in calls.items()}


async def _socket_answers(url: str, key: str, dictionary_id: str) -> dict[str, object]:
    """What both WebSockets answer `key` for a context that names `dictionary_id` (the id written as `<id>`)."""
    ws_url, seen = url.replace("http://", "ws://"), {}
    async with websockets.connect(f"{ws_url}/v1/audio/speech/stream", additional_headers=bearer(key)) as ws:
        await ws.send(json.dumps({"type": "config", "voice": "jenny", "pronunciation_dictionary_locators": locators(dictionary_id)}))
        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
        seen["our websocket"] = {k: v for k, v in event.items() if k not in ("session_id", "id")}
    eleven = f"{ws_url}/v1/text-to-speech/jenny/stream-input?model_id=m&output_format=pcm_24000"
    async with websockets.connect(eleven, additional_headers={"xi-api-key": key}) as ws:
        await ws.send(json.dumps({"text": " ", "pronunciation_dictionary_locators": locators(dictionary_id)}))
        seen["elevenlabs websocket"] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return json.loads(json.dumps(seen).replace(dictionary_id, "<id>"))


async def test_another_tenants_dictionary_is_exactly_a_missing_one(url: str, fake: FakeVLLM) -> None:
    a, b = new_key(url, "brand-a"), new_key(url, "brand-b")
    made = create(url, a["key"])
    as_b = _answers(url, b["key"], made["id"])
    missing = _answers(url, b["key"], "n0such1dictionary2id")
    assert as_b == missing
    assert {k: v[0] for k, v in as_b.items()} == {
        "get": 404, "patch": 404, "add-rules": 404, "remove-rules": 404, "set-rules": 404, "download": 404,
        "delete": 404, "speech": 400, "elevenlabs": 400, "vc": 400,
    }  # fmt: skip
    sockets = await _socket_answers(url, b["key"], made["id"])
    assert sockets == await _socket_answers(url, b["key"], "n0such1dictionary2id")
    assert sockets["our websocket"]["error"]["param"] == "pronunciation_dictionary_locators[0]"
    assert "unknown pronunciation dictionary '<id>'" in sockets["elevenlabs websocket"]["message"]
    listed = httpx.get(f"{url}/v1/pronunciation-dictionaries", headers=bearer(b["key"])).json()
    assert listed["pronunciation_dictionaries"] == []
    got = httpx.get(f"{url}/v1/pronunciation-dictionaries/{made['id']}", headers=bearer(a["key"])).json()
    assert got["name"] == "brands" and got["latest_version_id"] == made["version_id"]  # B changed nothing
    r = httpx.post(f"{url}/v1/audio/speech", headers=bearer(a["key"]), timeout=30,
                   json={"input": TEXT, "voice": "jenny", "pronunciation_dictionary_locators": locators(made["id"])})  # fmt: skip
    assert r.status_code == 200 and fake.requests[-1].prompt == speech_prompt("jenny", SPOKEN)


def test_our_word_timings_name_the_text_as_sent(url: str) -> None:
    """`timestamps`: each spoken word names the characters of the input it came from; the alias's words name the
    string the dictionary replaced."""
    made = create(url)
    body = {"input": TEXT, "voice": "jenny", "response_format": "pcm", "timestamps": "word", "stream": False,
            "pronunciation_dictionary_locators": locators(made["id"])}  # fmt: skip
    words = httpx.post(f"{url}/v1/audio/speech", json=body, headers=bearer(ADMIN), timeout=60).json()["words"]
    assert [(w["word"], TEXT[slice(*w["source"])]) for w in words] == [
        ("A", "A"), ("tomato", "tomato"), ("from", "from"), ("Kuala", "KL"), ("Lumpur.", "KL."),
    ]


def test_a_blank_name_is_a_400_from_rules_from_a_file_and_on_rename(url: str) -> None:
    """What the schema's NOT_BLANK says, the routes hold to: a name of white space (or of characters cleanup
    removes) is refused, from JSON and from a multipart form alike, and a rename to one too."""
    base = f"{url}/v1/pronunciation-dictionaries"
    blank = " \u200e\t"
    r = httpx.post(f"{base}/add-from-rules", json={"name": blank, "rules": RULES}, headers=bearer(ADMIN), timeout=30)
    assert (r.status_code, r.json()["error"]["param"]) == (400, "name"), r.text
    form = {"name": blank, "description": "d"}
    r = httpx.post(f"{base}/add-from-file", data=form, headers=bearer(ADMIN), timeout=30)
    assert (r.status_code, r.json()["error"]["param"]) == (400, "name"), r.text
    r = httpx.post(f"{base}/add-from-file", data={"description": "d"}, headers=bearer(ADMIN), timeout=30)
    assert (r.status_code, r.json()["error"]["param"]) == (400, "name"), r.text
    made = create(url)
    r = httpx.patch(f"{base}/{made['id']}", json={"name": blank}, headers=bearer(ADMIN), timeout=30)
    assert (r.status_code, r.json()["error"]["param"]) == (400, "name"), r.text
