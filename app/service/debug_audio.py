"""`DEBUG_AUDIO`: each decoded window saved as a WAV file, keeping only the newest `DEBUG_AUDIO_MAX_FILES`."""

from __future__ import annotations

import logging
import threading
from collections import deque
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class DebugAudioWriter:
    """Writes `<request id>_<index>.wav` under `directory`; past `max_files` the oldest are removed.

    Files already in the directory count too (oldest first, by modification time), so restarts do not
    let the folder grow. Thread-safe: streams write from worker threads.
    """

    def __init__(self, directory: str, max_files: int) -> None:
        self.directory = Path(directory)
        self.max_files = max_files
        self._lock = threading.Lock()
        self._files: deque[Path] | None = None  # read from the directory on the first write
        self._cap_logged = False

    def write(self, request_id: str, index: int, audio: np.ndarray, sample_rate: int) -> None:
        import soundfile as sf

        with self._lock:
            if self._files is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._files = deque(sorted(self.directory.glob("*.wav"), key=lambda p: p.stat().st_mtime))
            path = self.directory / f"{request_id}_{index:04d}.wav"
            sf.write(path, audio, sample_rate, subtype="PCM_16")
            self._files.append(path)
            while len(self._files) > self.max_files:
                if not self._cap_logged:
                    logger.warning(
                        "DEBUG_AUDIO: %s holds DEBUG_AUDIO_MAX_FILES=%d files; removing the oldest from now on",
                        self.directory,
                        self.max_files,
                    )
                    self._cap_logged = True
                self._files.popleft().unlink(missing_ok=True)
