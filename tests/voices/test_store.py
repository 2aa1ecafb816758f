"""The store alone, on a real SQLite file and a real PostgreSQL server: rows round-trip, names are unique,
the schema is created once however many processes open the store at once, and a dead server is a 503."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.errors import ConflictError, NotFoundError, StoreUnavailableError
from app.service.voice_store import SavedVoice, VoiceStore
from tools.harness import free_port


def voice(name: str, tokens: tuple[int, ...] = (1, 65535, 0, 4242)) -> SavedVoice:
    return SavedVoice(
        name=name, reference_text="saya suka makan nasi lemak.", transcript="Saya suka makan nasi lemak.",
        reference_tokens=tokens, audio_seconds=0.08, audio_sha256="ab" * 32, language="ms", consent="true",
        consent_by="Aminah binti Ali", created_from="127.0.0.1", created_at="2026-12-02T03:00:00Z",
    )


async def test_voices_round_trip_and_names_are_unique(store_url: str) -> None:
    store = VoiceStore(store_url)
    await store.open()
    try:
        await store.add(voice("my-voice"))
        await store.add(voice("another.voice_2", tokens=tuple(range(500))))
        got = await store.get("my-voice")
        assert got == voice("my-voice")
        assert (await store.get("another.voice_2")).reference_tokens == tuple(range(500))
        assert await store.get("My-Voice") is None  # names are case-sensitive
        with pytest.raises(ConflictError) as info:
            await store.add(voice("my-voice", tokens=(9,)))
        assert info.value.code == "voice_exists"
        assert (await store.get("my-voice")).reference_tokens == (1, 65535, 0, 4242)  # the first one stays
        assert [v.name for v in await store.list()] == ["another.voice_2", "my-voice"]
        await store.delete("my-voice")
        with pytest.raises(NotFoundError):
            await store.delete("my-voice")
        assert [v.name for v in await store.list()] == ["another.voice_2"]
    finally:
        await store.close()


def test_the_schema_is_created_once_by_many_processes_at_once(store_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_one() -> None:
        async def go() -> None:
            store = VoiceStore(store_url)
            barrier.wait()
            await store.open()
            await store.close()

        try:
            asyncio.run(go())
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


async def test_an_unreachable_server_is_a_503() -> None:
    store = VoiceStore(f"postgresql://tts@127.0.0.1:{free_port()}/nothing")
    with pytest.raises(StoreUnavailableError):
        await store.open()
    await store.close()


async def test_built_in_voices_and_aliases_win_over_a_saved_voice_of_the_same_name(tmp_path) -> None:
    """A saved voice named `narrator`, then VOICE_ALIASES gains `narrator`: the alias is what requests get."""
    from app.service.voices import Voices
    from app.settings import Settings

    store = VoiceStore(f"sqlite:///{tmp_path / 'v.db'}")
    await store.open()
    await store.add(voice("narrator"))
    before = Voices(Settings(_env_file=None).generation, store)
    assert (await before.resolve("narrator")).cloned
    after = Voices(Settings(_env_file=None, voice_aliases="narrator=idayu").generation, store)
    resolved = await after.resolve("narrator")
    assert resolved.speaker == "idayu" and resolved.name == "narrator"
    assert (await after.resolve(None)).speaker == "husein"
    await store.close()
