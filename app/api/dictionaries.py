"""`/v1/pronunciation-dictionaries`: ElevenLabs' pronunciation dictionary API, as its SDK calls it (create from a PLS
file or from rules, add, remove or set rules (each a new version), list, get, download a version as PLS, rename
or archive), plus DELETE. Each dictionary is its caller's tenant's: for another tenant it does not exist (404).
Requests name them with `pronunciation_dictionary_locators` (app/service/dictionaries.py)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import UploadFile

from app.api.auth import caller
from app.api.errors import invalid_request
from app.api.openapi import error_responses
from app.api.uploads import read_limited_form
from app.errors import NotReadyError, PayloadTooLargeError
from app.service.dictionaries import Dictionaries, as_bad_request
from app.service.dictionary_store import DictionaryRecord
from app.service.principal import Principal
from app.service.requests import NOT_BLANK, _clean_text
from app.text.dictionary import LIMITS, Rule, merged, parse_pls, removed, rules_from_json, write_pls

PREFIX = "/v1/pronunciation-dictionaries"
router = APIRouter(prefix=PREFIX, dependencies=[Depends(caller)], tags=["pronunciation dictionaries"])


class DictionaryIdConvertor(Convertor[str]):
    """A path's dictionary id: never `add-from-file` or `add-from-rules` (the create routes), so that those paths
    are theirs alone (a GET on one is a 405 naming POST, not a lookup of a dictionary of that name)."""

    regex = "(?!add-from-)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("dictionary_id", DictionaryIdConvertor())
Id = str
RULES_DESCRIPTION = (
    "Alias rules `{type: alias, string_to_replace, alias, case_sensitive?, word_boundaries?}` (both flags default "
    "true) or phoneme rules `{type: phoneme, string_to_replace, phoneme, alphabet}` (stored; this model reads text, "
    "so a response whose text met one names it in `X-Unused-Settings`)"
)


def dictionaries(request: Request) -> Dictionaries:
    """The tenant-scoped dictionaries (`app.state.dictionaries`, the service's once it is loaded; 503 before)."""
    found = getattr(request.app.state, "dictionaries", None)
    if found is None:
        raise NotReadyError("the service is still loading")
    return found


class AliasRule(BaseModel):
    type: Literal["alias"]
    string_to_replace: str = Field(..., max_length=LIMITS.string_chars, json_schema_extra=NOT_BLANK)
    alias: str = Field(..., max_length=LIMITS.replacement_chars, json_schema_extra=NOT_BLANK)
    case_sensitive: bool | None = Field(None, strict=True, description="Default true")
    word_boundaries: bool | None = Field(None, strict=True, description="Default true: whole words only")

    _clean = field_validator("string_to_replace", "alias", mode="before")(_clean_text)


class PhonemeRule(BaseModel):
    type: Literal["phoneme"]
    string_to_replace: str = Field(..., max_length=LIMITS.string_chars, json_schema_extra=NOT_BLANK)
    phoneme: str = Field(..., max_length=LIMITS.replacement_chars, json_schema_extra=NOT_BLANK)
    alphabet: str = Field(..., max_length=LIMITS.replacement_chars, json_schema_extra=NOT_BLANK)
    case_sensitive: bool | None = Field(None, strict=True)
    word_boundaries: bool | None = Field(None, strict=True)

    _clean = field_validator("string_to_replace", "phoneme", "alphabet", mode="before")(_clean_text)


RuleModel = Annotated[AliasRule | PhonemeRule, Field(discriminator="type")]
Rules = Annotated[list[RuleModel], Field(max_length=LIMITS.rules, description=RULES_DESCRIPTION)]
Name = Annotated[str, Field(max_length=LIMITS.name_chars, json_schema_extra=NOT_BLANK, description="For people")]


def _not_blank(cls: type, v: str | None) -> str | None:
    """A name holds something besides white space (what NOT_BLANK's schema says)."""
    if v is not None and not v.strip():
        raise ValueError("must not be blank")
    return v


class Described(BaseModel):
    """A new dictionary's name and description, from JSON (`FromRules`) or a form (add-from-file)."""

    name: Name
    description: str | None = Field(None, max_length=LIMITS.description_chars)

    _clean = field_validator("name", "description", mode="before")(_clean_text)
    _named = field_validator("name")(_not_blank)


class FromRules(Described):
    rules: Rules
    workspace_access: str | None = Field(None, max_length=64, description="Accepted; a dictionary is its tenant's")


class AddRules(BaseModel):
    rules: Rules


class RemoveRules(BaseModel):
    rule_strings: list[str] = Field(..., max_length=LIMITS.rules, description="The `string_to_replace` of each")


class Update(BaseModel):
    name: Name | None = None
    archived: bool | None = Field(
        None, strict=True, description="true: archived (listed with include_archived); still usable"
    )

    _clean = field_validator("name", mode="before")(_clean_text)
    _named = field_validator("name")(_not_blank)


def _rules(items: list[AliasRule | PhonemeRule]) -> tuple[Rule, ...]:
    """The request's rules, as the pure module takes them (a 400 for what the schema cannot say)."""
    with as_bad_request():
        return rules_from_json([r.model_dump(exclude_none=True) for r in items])


CREATED = {
    200: {
        "description": "The new dictionary and its first version",
        "links": {
            op: {"operationId": op, "parameters": {"dictionary_id": "$response.body#/id"}}
            for op in ("get_pronunciation_dictionary", "update_pronunciation_dictionary", "delete_pronunciation_dictionary",
                       "add_pronunciation_rules", "set_pronunciation_rules", "remove_pronunciation_rules")
        } | {"download_pronunciation_dictionary": {"operationId": "download_pronunciation_dictionary", "parameters": {
            "dictionary_id": "$response.body#/id", "version_id": "$response.body#/version_id"}}},
    }
}  # fmt: skip


def _added(record: DictionaryRecord) -> dict[str, Any]:
    """ElevenLabs' `AddPronunciationDictionaryResponseModel`."""
    m = record.metadata()
    return {
        "id": m["id"], "name": m["name"], "created_by": m["created_by"], "creation_time_unix": m["creation_time_unix"],
        "version_id": m["latest_version_id"], "version_rules_num": m["latest_version_rules_num"],
        "description": m["description"], "permission_on_resource": "admin",
    }  # fmt: skip


def _version(record: DictionaryRecord) -> dict[str, Any]:
    """ElevenLabs' `PronunciationDictionaryRulesResponseModel`."""
    return {"id": record.id, "version_id": record.latest_version, "version_rules_num": record.latest_rules}


@router.post(
    "/add-from-rules",
    operation_id="add_pronunciation_dictionary_from_rules",
    responses=CREATED | error_responses(400, 413, 503),
)
async def add_from_rules(body: FromRules, request: Request, principal: Principal = Depends(caller)) -> dict:
    """A new dictionary from rules (its first version)."""
    rules = _rules(body.rules)
    record = await dictionaries(request).create(principal.tenant, body.name, body.description, rules, principal.key_id)
    return _added(record)


@router.post(
    "/add-from-file",
    operation_id="add_pronunciation_dictionary_from_file",
    responses=CREATED | error_responses(400, 413, 503),
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": LIMITS.name_chars, **NOT_BLANK},
                       "description": {"type": "string", "maxLength": LIMITS.description_chars},
                       "file": {"type": "string", "format": "binary"}},
    }}}}},
)  # fmt: skip
async def add_from_file(request: Request, principal: Principal = Depends(caller)) -> dict:
    """A new dictionary from a PLS lexicon (`file`, multipart; at most 1 MiB; DTDs and entities refused)."""
    try:
        form = await read_limited_form(request, LIMITS.file_bytes)
    except PayloadTooLargeError as exc:
        raise PayloadTooLargeError(f"file may be at most {LIMITS.file_bytes} bytes", param="file") from exc
    try:
        upload = form.get("file")
        data = await upload.read() if isinstance(upload, UploadFile) else b""
        fields = {k: v for k in ("name", "description") if isinstance(v := form.get(k), str)}
    finally:
        await form.close()
    try:
        described = Described.model_validate(fields)
    except ValidationError as exc:
        raise invalid_request(exc) from exc
    with as_bad_request():
        rules = parse_pls(data) if data else ()
    record = await dictionaries(request).create(
        principal.tenant, described.name, described.description, rules, principal.key_id
    )
    return _added(record)


@router.get("", operation_id="list_pronunciation_dictionaries", responses=error_responses(400, 503))
async def list_dictionaries(
    request: Request,
    principal: Principal = Depends(caller),
    cursor: str | None = Query(None, max_length=16, pattern=r"^[0-9]+$"),
    page_size: int = Query(30, ge=1, le=100),
    sort: Literal["creation_time_unix", "created_at_unix", "name"] = "creation_time_unix",
    sort_direction: Literal["ascending", "descending"] = "descending",
    include_archived: bool = False,
) -> dict:
    """The tenant's dictionaries, a page at a time (`next_cursor` while `has_more`)."""
    offset = int(cursor or 0)
    store = dictionaries(request).require()
    rows = await store.list(
        principal.tenant, archived=include_archived, sort="name" if sort == "name" else "created_at",
        descending=sort_direction == "descending", limit=page_size + 1, offset=offset,
    )  # fmt: skip
    more = len(rows) > page_size
    return {
        "pronunciation_dictionaries": [r.metadata() for r in rows[:page_size]],
        "next_cursor": str(offset + page_size) if more else None,
        "has_more": more,
    }


@router.get(
    "/{dictionary_id:dictionary_id}", operation_id="get_pronunciation_dictionary", responses=error_responses(404, 503)
)
async def get_dictionary(dictionary_id: Id, request: Request, principal: Principal = Depends(caller)) -> dict:
    """The dictionary's metadata and its latest version's rules."""
    record, rules = await dictionaries(request).get(principal.tenant, dictionary_id)
    return record.metadata() | {"rules": [r.to_json() for r in rules]}


@router.patch(
    "/{dictionary_id:dictionary_id}",
    operation_id="update_pronunciation_dictionary",
    responses=error_responses(400, 404, 503),
)
async def update_dictionary(
    dictionary_id: Id, body: Update, request: Request, principal: Principal = Depends(caller)
) -> dict:
    """Rename or archive (or unarchive) it; its version is kept."""
    values: dict[str, Any] = {}
    if body.name is not None:
        values["name"] = body.name
    if body.archived is not None:
        values["archived_at"] = time.time() if body.archived else None
    return (await dictionaries(request).update(principal.tenant, dictionary_id, **values)).metadata()


@router.delete(
    "/{dictionary_id:dictionary_id}",
    status_code=204,
    operation_id="delete_pronunciation_dictionary",
    responses=error_responses(404, 503),
)
async def delete_dictionary(dictionary_id: Id, request: Request, principal: Principal = Depends(caller)) -> Response:
    """Delete it and every version (ours: ElevenLabs archives); requests naming it get a 400 from then on."""
    await dictionaries(request).delete(principal.tenant, dictionary_id)
    return Response(status_code=204)


@router.post(
    "/{dictionary_id:dictionary_id}/add-rules",
    operation_id="add_pronunciation_rules",
    responses=error_responses(400, 404, 413, 503),  # 413: a body over MAX_BODY_BYTES
)
async def add_rules(
    dictionary_id: Id, body: AddRules, request: Request, principal: Principal = Depends(caller)
) -> dict:
    """A new version with these rules added (a rule for a string already there replaces it)."""
    rules = _rules(body.rules)
    record = await dictionaries(request).change(principal.tenant, dictionary_id, lambda old: merged(old, rules))
    return _version(record)


@router.post(
    "/{dictionary_id:dictionary_id}/set-rules",
    operation_id="set_pronunciation_rules",
    responses=error_responses(400, 404, 413, 503),  # 413: a body over MAX_BODY_BYTES
)
async def set_rules(
    dictionary_id: Id, body: AddRules, request: Request, principal: Principal = Depends(caller)
) -> dict:
    """A new version holding exactly these rules."""
    rules = _rules(body.rules)
    record = await dictionaries(request).change(principal.tenant, dictionary_id, lambda _: rules)
    return _version(record)


@router.post(
    "/{dictionary_id:dictionary_id}/remove-rules",
    operation_id="remove_pronunciation_rules",
    responses=error_responses(400, 404, 413, 503),  # 413: a body over MAX_BODY_BYTES
)
async def remove_rules(
    dictionary_id: Id, body: RemoveRules, request: Request, principal: Principal = Depends(caller)
) -> dict:
    """A new version without the rules for these strings (a string it does not hold is ignored)."""
    record = await dictionaries(request).change(
        principal.tenant, dictionary_id, lambda old: removed(old, body.rule_strings)
    )
    return _version(record)


@router.get(
    "/{dictionary_id:dictionary_id}/{version_id}/download",
    operation_id="download_pronunciation_dictionary",
    response_class=Response,
    responses={200: {"content": {"application/pls+xml": {"schema": {"type": "string"}}}}, **error_responses(404, 503)},
)
async def download(
    dictionary_id: Id, version_id: Id, request: Request, principal: Principal = Depends(caller)
) -> Response:
    """The version as a PLS lexicon."""
    rules = await dictionaries(request).version(principal.tenant, dictionary_id, version_id)
    return Response(
        write_pls(rules), media_type="application/pls+xml",
        headers={"Content-Disposition": f'attachment; filename="{dictionary_id}_{version_id}.pls"'},
    )  # fmt: skip
