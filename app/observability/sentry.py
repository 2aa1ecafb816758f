"""Error reporting to Sentry, when `SENTRY_DSN` is set (called from the app's lifespan, never at import).

Reports carry neither secrets nor customer text: no local variables, no request bodies, headers and fields with
credential-like names scrubbed, every configured secret's value replaced wherever it appears, and no query
strings, cookies or user data unless `SENTRY_SEND_DEFAULT_PII`. A client's mistake (a 4xx, a refused key, a
client that went away) is not an error to report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from app import __version__
from app.settings import ObservabilitySettings

logger = logging.getLogger(__name__)

FILTERED = "[Filtered]"
# names (headers, fields, variables) scrubbed besides sentry_sdk's DEFAULT_DENYLIST
SECRET_NAMES = ["xi-api-key", "xi_api_key", "x-api-key", "api-key", "tts_api_key", "sentry_dsn", "proxy-authorization"]
# what a client did wrong, not the service: never reported
_CLIENT_ERRORS = ("WebSocketDisconnect", "ClientDisconnect")


def _replace_secrets(value: Any, secrets: tuple[str, ...]) -> Any:
    """`value` with every occurrence of every secret replaced, through dicts, lists and strings."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        return value
    if isinstance(value, dict):
        return {k: _replace_secrets(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_secrets(v, secrets) for v in value]
    return value


def _client_error(hint: dict, is_client_error: Callable[[BaseException], bool]) -> bool:
    exc = (hint.get("exc_info") or (None, None))[1]
    return exc is not None and (type(exc).__name__ in _CLIENT_ERRORS or is_client_error(exc))


def _never(exc: BaseException) -> bool:
    return False


def make_before_send(
    secrets: Iterable[str], send_default_pii: bool, is_client_error: Callable[[BaseException], bool] = _never
) -> Any:
    """Sentry's `before_send`: drops client errors (`is_client_error`, a disconnect); strips request bodies, cookies, query strings (unless PII is
    sent) and every secret's value from what is left."""
    known = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))

    def before_send(event: dict, hint: dict) -> dict | None:
        if _client_error(hint, is_client_error):
            return None
        request = event.get("request")
        if isinstance(request, dict):
            request.pop("data", None)  # the customer's text
            request.pop("cookies", None)
            if not send_default_pii:
                request.pop("query_string", None)
                request.pop("env", None)
            headers = request.get("headers")
            if isinstance(headers, dict):
                for name in list(headers):
                    if name.lower() in SECRET_NAMES or name.lower() in ("authorization", "cookie"):
                        headers[name] = FILTERED
        return _replace_secrets(event, known) if known else event

    return before_send


def init_sentry(
    settings: ObservabilitySettings,
    secrets: Iterable[str] = (),
    is_client_error: Callable[[BaseException], bool] = _never,
) -> None:
    """Start the SDK; `secrets`: values (API keys) that must never leave in a report; `is_client_error`: an
    exception that is the client's doing (a 4xx), never reported."""
    if not settings.sentry_dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    server_errors = set(range(500, 600))
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        send_default_pii=settings.sentry_send_default_pii,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        release=f"streamable-tts-api@{__version__}",
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(
            denylist=[*DEFAULT_DENYLIST, *SECRET_NAMES],
            recursive=True,
            send_default_pii=settings.sentry_send_default_pii,
        ),
        before_send=make_before_send(secrets, settings.sentry_send_default_pii, is_client_error),
        before_send_transaction=make_before_send(secrets, settings.sentry_send_default_pii),
        integrations=[
            StarletteIntegration(failed_request_status_codes=server_errors),
            FastApiIntegration(failed_request_status_codes=server_errors),
        ],
    )
    logger.info("Sentry initialised (send_default_pii=%s)", settings.sentry_send_default_pii)
