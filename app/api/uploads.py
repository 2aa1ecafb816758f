"""Multipart uploads refused while they stream in: by `Content-Length`, then by counting the bytes received."""

from __future__ import annotations

from collections.abc import Collection

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message

from app.errors import InvalidRequestError, PayloadTooLargeError, TTSError

FORM_OVERHEAD = 64 * 1024  # multipart boundaries, part headers and the text fields around the file


async def read_limited_form(request: Request, max_file_bytes: int) -> FormData:
    """The parsed form of a request whose body may hold one file of up to `max_file_bytes`.

    A larger body is a 413 as soon as it is announced or its bytes arrive, never spooled whole.
    """
    limit = max_file_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), max_file_bytes)
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(received, max_file_bytes, so_far=True)
        return message

    try:
        return await Request(request.scope, counting_receive).form(max_files=1, max_fields=64)
    except (TTSError, ClientDisconnect):
        raise
    except HTTPException as exc:  # starlette's own multipart errors
        raise InvalidRequestError(f"expected multipart/form-data: {exc.detail}") from exc
    except Exception as exc:  # malformed multipart bodies raise parser-specific errors
        raise InvalidRequestError(f"expected multipart/form-data: {exc}") from exc


async def read_clip_form(
    request: Request, file_field: str, max_file_bytes: int, fields: Collection[str] = ()
) -> tuple[bytes, dict[str, str]]:
    """A voice clip's form (`/v1/audio/vc`, `POST /v1/audio/voices`): the file in `file_field` (400 without one)
    and the text fields, read within `read_limited_form`'s bounds. One of `fields` (the request's, the file's) sent
    twice is a 400 naming it: which of its values was meant (`consent=false`, then `consent=true`) is not for the
    server to guess. Unknown fields are ignored, as in every request, however often they come."""
    form = await read_limited_form(request, max_file_bytes)
    try:
        _each_once(form, {file_field, *fields})
        upload = form.get(file_field)
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError(f"{file_field} (a file) is required", param=file_field)
        return await upload.read(), {k: v for k, v in form.items() if isinstance(v, str)}
    finally:
        await form.close()


def _each_once(form: FormData, fields: set[str]) -> None:
    seen: set[str] = set()
    for name, _ in form.multi_items():
        if name in seen and name in fields:
            raise InvalidRequestError(
                f"{name} is sent more than once; send each field once", param=name, code="duplicate_field"
            )
        seen.add(name)


def _too_large(size: int, max_file_bytes: int, *, so_far: bool = False) -> PayloadTooLargeError:
    what = f"over {size} bytes received so far" if so_far else f"{size} bytes"
    return PayloadTooLargeError(
        f"the upload is {what}; reference_audio may be at most {max_file_bytes} bytes (MAX_REFERENCE_BYTES)",
        param="reference_audio",
    )
