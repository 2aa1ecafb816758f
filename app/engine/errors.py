"""What can go wrong with a codec job, as the engine and its client say it: no HTTP here.

`app/api/errors.py` maps each of these to the status, type and code a client sees.
"""

from __future__ import annotations

from app.errors import TTSError


class EngineError(TTSError):
    """Base class: a codec job did not give its result."""


class EngineUnavailable(EngineError):
    """The engine is down, restarting, or not answering; the job was refused or lost."""


class EngineLost(EngineUnavailable):
    """The engine died (or restarted) with the job: a restarted engine may be sent it again."""


class EngineStopping(EngineUnavailable):
    """The engine (or its worker) is shutting down and takes no more jobs."""


class JobTimedOut(EngineError):
    """A job did not finish within its time limit."""


class CodecFailed(EngineError):
    """The codec raised on the batch the job was part of (and on the job alone)."""


class InvalidInput(EngineError):
    """The engine refused the job's input (dtype, kind, a non-finite slack)."""


class AlignerUnavailable(EngineError):
    """The engine has no forced aligner loaded (ALIGNER_MODEL is empty)."""
