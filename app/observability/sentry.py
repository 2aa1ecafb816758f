"""Error reporting to Sentry, when `SENTRY_DSN` is set (called from the app's lifespan, never at import)."""

from __future__ import annotations

import logging

from app import __version__
from app.settings import ObservabilitySettings

logger = logging.getLogger(__name__)


def init_sentry(settings: ObservabilitySettings) -> None:
    if not settings.sentry_dsn:
        return
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        send_default_pii=settings.sentry_send_default_pii,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        release=f"streamable-tts-api@{__version__}",
    )
    logger.info("Sentry initialised (send_default_pii=%s)", settings.sentry_send_default_pii)
