"""Logging set-up for every process of the service (API front-ends and the codec engine)."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
