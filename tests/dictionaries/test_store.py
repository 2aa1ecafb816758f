"""The dictionaries' store (app/service/dictionary_store.py) on a real SQLite file and the real PostgreSQL server:
changes made at once by several writers (threads, each with its own connection, as workers and replicas are) all
land, each in a version of its own; versions never change; every query is the tenant's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.service.dictionary_store import DictionaryStore
from app.service.voice_store import VoiceStore
from app.text.dictionary import Rule, merged


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[DictionaryStore]:
    voices = VoiceStore(store_url)
    await voices.open()
    try:
        yield DictionaryStore(voices.engine)
    finally:
        await voices.close()


async def test_changes_made_at_once_all_land_each_in_its_own_version(store: DictionaryStore) -> None:
    made = await store.create("t", "brands", None, (), "k")
    adds = [(Rule(f"W{i}", alias=f"word {i}"),) for i in range(8)]
    records = await asyncio.gather(*(store.new_version("t", made.id, lambda old, r=r: merged(old, r)) for r in adds))
    versions = {r.latest_version for r in records if r is not None}
    assert len(versions) == 8 and made.latest_version not in versions
    latest_id, latest = await store.rules("t", made.id, None)
    assert sorted(r.string_to_replace for r in latest) == [f"W{i}" for i in range(8)]
    assert latest_id in versions
    assert await store.rules("t", made.id, made.latest_version) == (made.latest_version, ())  # the first, unchanged


async def test_another_tenant_reads_and_changes_nothing(store: DictionaryStore) -> None:
    made = await store.create("a", "brands", "d", (Rule("KL", alias="Kuala Lumpur"),), "k")
    assert await store.get("b", made.id) is None
    assert await store.rules("b", made.id, None) is None
    assert await store.rules("b", made.id, made.latest_version) is None
    assert await store.new_version("b", made.id, lambda old: ()) is None
    assert await store.update("b", made.id, name="mine") is None
    assert await store.delete("b", made.id) is False
    assert await store.list("b", archived=True, sort="name", descending=False, limit=10, offset=0) == []
    assert await store.get("a", made.id) == made
