"""Voice names -> `Voice`: the built-in speakers and their aliases first, then the saved voices of the store."""

from __future__ import annotations

from datetime import UTC, datetime

from app.errors import ConflictError, InvalidRequestError, NotReadyError
from app.service.principal import caller_tenant
from app.service.voice import Voice
from app.service.voice_store import SavedVoice, VoiceStore, check_name, not_found, taken
from app.settings import GenerationSettings


class Voices:
    """Every voice a request may name. `store` None: built-in voices only (saving is refused with 503).

    Saved voices are the caller's tenant's (`CALLER`, set where the key was checked): another tenant's voice of a
    name is exactly a voice that does not exist, on every path (404 here, 400 `invalid_voice` on speech)."""

    def __init__(self, generation: GenerationSettings, store: VoiceStore | None) -> None:
        self.generation = generation
        self.store = store

    def builtin(self, name: str) -> Voice | None:
        """A built-in voice or alias (as SPEAKERS and VOICE_ALIASES spell it), or None."""
        speaker = self.generation.resolve_voice(name)
        return None if speaker is None else Voice.builtin(speaker, name)

    async def resolve(self, name: str | None, param: str = "voice") -> Voice:
        """A request's voice: None or "" is the default speaker; an unknown name is a 400 `invalid_voice`."""
        g = self.generation
        asked = name or g.default_speaker
        voice = self.builtin(asked)
        if voice is not None:
            return voice
        saved = await self.store.get(asked, caller_tenant()) if self.store is not None and check_name_ok(asked) else None
        if saved is not None:
            return Voice.clone(saved.reference_text, saved.reference_tokens, saved.name)
        aliases = f" (or an alias: {', '.join(g.voice_aliases)})" if g.voice_aliases else ""
        saved_hint = " or a saved voice (GET /v1/audio/voices)" if self.store is not None else ""
        raise InvalidRequestError(
            f"unknown voice {asked[:80]!r}; available: {', '.join(g.speakers)}{aliases}{saved_hint}",
            param=param,
            code="invalid_voice",
        )

    def check_new_name(self, name: str) -> str:
        """A name a new saved voice may take: valid, and neither a built-in voice or alias nor one in disguise
        (`Jenny`, `jenny.`, `jenny_`: the same in any case once `.`, `_` and `-` at either end are dropped), else
        409: a listener or a log reader could not tell them apart."""
        check_name(name)
        reserved = {_bare(n) for n in (*self.generation.speakers, *self.generation.voice_aliases)}
        if _bare(name) in reserved:
            raise ConflictError(
                f"{name!r} is, or looks like, a built-in voice or alias; a saved voice may not shadow it",
                param="name",
                code="voice_name_reserved",
            )
        return name

    async def check_free(self, name: str) -> None:
        """A 409 unless `name` may name a new saved voice and no saved voice has it yet (the insert checks again)."""
        self.check_new_name(name)
        if await self.require_store().get(name, caller_tenant()) is not None:
            raise taken(name)

    def require_store(self) -> VoiceStore:
        if self.store is None:
            raise NotReadyError("saved voices are off on this server")
        return self.store

    async def save(self, voice: SavedVoice) -> None:
        self.check_new_name(voice.name)
        await self.require_store().add(voice)

    async def saved(self, name: str) -> SavedVoice:
        voice = await self.require_store().get(name, caller_tenant()) if check_name_ok(name) else None
        if voice is None:
            raise not_found(name)
        return voice

    async def delete(self, name: str) -> None:
        if not check_name_ok(name):
            raise not_found(name)
        await self.require_store().delete(name, caller_tenant())

    async def catalogue(self) -> list[dict]:
        """`GET /v1/audio/voices`: built-in voices, then aliases (with the voice they are), then saved voices."""
        g = self.generation
        voices: list[dict] = [{"id": s, "name": s} for s in g.speakers]
        voices += [{"id": a, "name": a, "alias_of": v} for a, v in g.voice_aliases.items()]
        if self.store is not None:
            voices += [{"id": v.name, "name": v.name, "type": "saved", "created_at": v.created_at} for v in await self.store.list(caller_tenant())]
        return voices


def _bare(name: str) -> str:
    return name.strip("._-").lower()


def check_name_ok(name: str) -> bool:
    try:
        check_name(name)
    except InvalidRequestError:
        return False
    return True


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
