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
# names (headers, fields, variables) whose values are scrubbed anywhere in a report, besides the SDK's own
# sensitive terms for headers
SECRET_NAMES = ["xi-api-key", "xi_api_key", "x-api-key", "api-key", "tts_api_key", "sentry_dsn", "proxy-authorization"]
# what sentry-sdk 2's EventScrubber denied by name, through the whole event; sentry-sdk 3 dropped that scrubber
DENYLIST = frozenset(
    [*SECRET_NAMES, "password", "passwd", "secret", "api_key", "apikey", "auth", "authorization", "credentials",
     "private_key", "privatekey", "token", "session", "sessionid", "csrftoken", "csrf_token", "csrf", "cookie",
     "set_cookie", "set-cookie", "x_api_key"]
)  # fmt: skip
# the client's address: personal data, scrubbed unless SENTRY_SEND_DEFAULT_PII
PII_NAMES = frozenset(["x_forwarded_for", "x-forwarded-for", "x_real_ip", "x-real-ip", "ip_address", "remote_addr"])
# what a client did wrong, not the service: never reported
_CLIENT_ERRORS = ("WebSocketDisconnect", "ClientDisconnect")


def _scrub(value: Any, secrets: tuple[str, ...], names: frozenset[str]) -> Any:
    """`value` with every occurrence of every secret replaced, and the value of every key in `names`
    (case-insensitive), through dicts, lists and strings."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, FILTERED)
        return value
    if isinstance(value, dict):
        return {
            k: FILTERED if isinstance(k, str) and k.lower() in names else _scrub(v, secrets, names)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, secrets, names) for v in value]
    return value


def _client_error(hint: dict, is_client_error: Callable[[BaseException], bool]) -> bool:
    exc = (hint.get("exc_info") or (None, None))[1]
    return exc is not None and (type(exc).__name__ in _CLIENT_ERRORS or is_client_error(exc))


def _never(exc: BaseException) -> bool:
    return False


def make_before_send(
    secrets: Iterable[str], send_default_pii: bool, is_client_error: Callable[[BaseException], bool] = _never
) -> Any:
    """Sentry's `before_send`: drops client errors (`is_client_error`, a disconnect); strips request bodies,
    cookies, query strings (unless PII is sent), every secret's value and every credential-like field from what
    is left."""
    known = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))
    names = DENYLIST if send_default_pii else DENYLIST | PII_NAMES

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
        return _scrub(event, known, names)

    return before_send


def privacy_options(send_default_pii: bool) -> dict[str, Any]:
    """sentry-sdk 3's `data_collection`: no local variables, no request bodies, no cookies; headers with
    credential-like names scrubbed (the SDK's own sensitive terms plus ours); query strings and user data only
    with `send_default_pii`."""
    return {
        "user_info": send_default_pii,
        "cookies": {"mode": "off"},
        "http_headers": {"request": {"mode": "denylist", "terms": [*SECRET_NAMES, "cookie"]}},
        "http_bodies": [],
        "url_query_params": {"mode": "denylist", "terms": SECRET_NAMES} if send_default_pii else {"mode": "off"},
        "stack_frame_variables": False,
        "gen_ai": {"inputs": False, "outputs": False},
    }


def init_sentry(
    settings: ObservabilitySettings,
    secrets: Iterable[str] = (),
    is_client_error: Callable[[BaseException], bool] = _never,
) -> None:
    """Start the SDK (sentry-sdk 3); `secrets`: values (API keys) that must never leave in a report;
    `is_client_error`: an exception that is the client's doing (a 4xx), never reported."""
    if not settings.sentry_dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    server_errors = set(range(500, 600))
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        release=f"streamable-tts-api@{__version__}",
        max_request_body_size="never",
        data_collection=privacy_options(settings.sentry_send_default_pii),
        before_send=make_before_send(secrets, settings.sentry_send_default_pii, is_client_error),
        before_send_span=make_before_send(secrets, settings.sentry_send_default_pii),  # spans: secrets replaced
        integrations=[
            StarletteIntegration(failed_request_status_codes=server_errors),
            FastApiIntegration(failed_request_status_codes=server_errors),
        ],
    )
    logger.info("Sentry initialised (send_default_pii=%s)", settings.sentry_send_default_pii)
