"""Pronunciation dictionaries for the caller's tenant: the routes' operations (404 for a dictionary the tenant does
not have, whoever else has it) and a request's `pronunciation_dictionary_locators` resolved into the versions its
text is read with (an unknown one: a 400 naming it, as an unknown voice is).

A version never changes once written: the versions requests name are cached per process (the latest is looked up
each time: one indexed read). A deleted dictionary's versions leave this process's cache at once, another
process's when they age out of it."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Protocol

from app.errors import InvalidRequestError, NotFoundError, NotReadyError
from app.service.dictionary_store import DictionaryRecord, DictionaryStore
from app.service.principal import caller_tenant
from app.text.dictionary import LIMITS, Dictionary, DictionaryError, Rule
from app.text.options import TextOptions

LOCATORS = "pronunciation_dictionary_locators"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what an id (ours: 20 letters and digits) may look like; else none is
_CACHED_VERSIONS = 256


class Locator(Protocol):
    pronunciation_dictionary_id: str
    version_id: str | None


class Locating(Protocol):
    """A request that names dictionaries (app/service/requests.py `DictionaryFields`, with `TextFields`)."""

    @property
    def text_options(self) -> TextOptions: ...

    @property
    def pronunciation_dictionary_locators(self) -> Sequence[Locator] | None: ...


@contextmanager
def as_bad_request() -> Iterator[None]:
    """A `DictionaryError` (a bad rule, a bad PLS file) as a 400 naming its field."""
    try:
        yield
    except DictionaryError as exc:
        raise InvalidRequestError(exc.message, param=exc.param, code="invalid_pronunciation_dictionary") from None


def not_found(dictionary_id: str) -> NotFoundError:
    return NotFoundError(
        f"no pronunciation dictionary {dictionary_id[:80]!r}", param="pronunciation_dictionary_id",
        code="pronunciation_dictionary_not_found",
    )  # fmt: skip


class Dictionaries:
    """The tenant-scoped operations on the store's dictionaries (None: the server has no store; a 503)."""

    def __init__(self, store: DictionaryStore | None) -> None:
        self.store = store
        self._versions: OrderedDict[tuple[str, str, str], tuple[Rule, ...]] = OrderedDict()

    def require(self) -> DictionaryStore:
        if self.store is None:
            raise NotReadyError("pronunciation dictionaries are off on this server (no store)")
        return self.store

    async def create(
        self, tenant: str, name: str, description: str | None, rules: tuple[Rule, ...], key_id: str
    ) -> DictionaryRecord:
        return await self.require().create(tenant, check_name(name), check_description(description), rules, key_id)

    async def get(self, tenant: str, dictionary_id: str) -> tuple[DictionaryRecord, tuple[Rule, ...]]:
        """The dictionary and its latest version's rules; 404 where the tenant has none of that id."""
        store = self.require()
        record = await store.get(tenant, dictionary_id) if _ID.fullmatch(dictionary_id) else None
        found = await store.rules(tenant, dictionary_id, record.latest_version) if record is not None else None
        if record is None or found is None:
            raise not_found(dictionary_id)
        return record, found[1]

    async def version(self, tenant: str, dictionary_id: str, version_id: str) -> tuple[Rule, ...]:
        rules = await self._version(tenant, dictionary_id, version_id)
        if rules is None:
            raise NotFoundError(
                f"no version {version_id[:80]!r} of pronunciation dictionary {dictionary_id[:80]!r}",
                param="version_id", code="pronunciation_dictionary_not_found",
            )  # fmt: skip
        return rules

    async def change(
        self, tenant: str, dictionary_id: str, change: Callable[[tuple[Rule, ...]], tuple[Rule, ...]]
    ) -> DictionaryRecord:
        """A new version made of the latest one by `change`; 404 where there is no such dictionary."""
        store = self.require()
        with as_bad_request():
            record = await store.new_version(tenant, dictionary_id, change) if _ID.fullmatch(dictionary_id) else None
        if record is None:
            raise not_found(dictionary_id)
        return record

    async def update(self, tenant: str, dictionary_id: str, **values: Any) -> DictionaryRecord:
        if "name" in values:
            check_name(values["name"])
        store = self.require()
        record = await store.update(tenant, dictionary_id, **values) if _ID.fullmatch(dictionary_id) else None
        if record is None:
            raise not_found(dictionary_id)
        return record

    async def delete(self, tenant: str, dictionary_id: str) -> None:
        store = self.require()
        if not (_ID.fullmatch(dictionary_id) and await store.delete(tenant, dictionary_id)):
            raise not_found(dictionary_id)
        for key in [k for k in self._versions if k[:2] == (tenant, dictionary_id)]:
            del self._versions[key]

    # -- requests ----------------------------------------------------------------------------------------------
    async def resolve(self, tenant: str, locators: Sequence[Locator] | None) -> tuple[Dictionary, ...]:
        """The versions a request names, in its order; a 400 naming the first it cannot find for `tenant`."""
        if not locators:
            return ()
        if len(locators) > LIMITS.locators:
            raise InvalidRequestError(f"at most {LIMITS.locators} pronunciation dictionaries a request", param=LOCATORS)
        if self.store is None:
            raise InvalidRequestError("pronunciation dictionaries are off on this server (no store)", param=LOCATORS)
        out = []
        for i, loc in enumerate(locators):
            found = await self._locate(tenant, loc.pronunciation_dictionary_id, loc.version_id)
            if found is None:
                version = f" version {loc.version_id[:80]!r}" if loc.version_id else ""
                raise InvalidRequestError(
                    f"unknown pronunciation dictionary {loc.pronunciation_dictionary_id[:80]!r}{version}",
                    param=f"{LOCATORS}[{i}]", code="invalid_pronunciation_dictionary",
                )  # fmt: skip
            out.append(Dictionary(loc.pronunciation_dictionary_id, *found))
        return tuple(out)

    async def read_with(self, req: Locating) -> TextOptions:
        """How `req`'s text is read: its fields, and the dictionaries it names resolved for the caller's tenant
        (`CALLER`; an unknown one: 400)."""
        return await self.options(caller_tenant(), req.text_options, req.pronunciation_dictionary_locators)

    async def options(self, tenant: str, options: TextOptions, locators: Sequence[Locator] | None) -> TextOptions:
        """`options` with the request's dictionaries (unchanged when it names none)."""
        if not locators:
            return options
        return replace(options, dictionaries=await self.resolve(tenant, locators))

    async def _locate(
        self, tenant: str, dictionary_id: str, version_id: str | None
    ) -> tuple[str, tuple[Rule, ...]] | None:
        if version_id is not None:
            rules = await self._version(tenant, dictionary_id, version_id)
            return None if rules is None else (version_id, rules)
        assert self.store is not None
        found = await self.store.rules(tenant, dictionary_id, None)
        if found is not None:
            self._remember((tenant, dictionary_id, found[0]), found[1])
        return found

    async def _version(self, tenant: str, dictionary_id: str, version_id: str) -> tuple[Rule, ...] | None:
        key = (tenant, dictionary_id, version_id)
        if not (_ID.fullmatch(dictionary_id) and _ID.fullmatch(version_id)):
            return None
        if key in self._versions:
            self._versions.move_to_end(key)
            return self._versions[key]
        found = await self.require().rules(tenant, dictionary_id, version_id)
        if found is None:
            return None
        self._remember(key, found[1])
        return found[1]

    def _remember(self, key: tuple[str, str, str], rules: tuple[Rule, ...]) -> None:
        self._versions[key] = rules
        self._versions.move_to_end(key)
        while len(self._versions) > _CACHED_VERSIONS:
            self._versions.popitem(last=False)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > LIMITS.name_chars:
        raise InvalidRequestError(f"name must be 1-{LIMITS.name_chars} characters", param="name")
    return name


def check_description(description: Any) -> str | None:
    if description is not None and (not isinstance(description, str) or len(description) > LIMITS.description_chars):
        raise InvalidRequestError(
            f"description must be at most {LIMITS.description_chars} characters", param="description"
        )
    return description
