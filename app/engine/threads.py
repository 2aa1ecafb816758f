"""Where torch runs in the engine: OpenMP thread pools and the threads that own them.

torch's CPU kernels run on an OpenMP team that belongs to the thread that called them, and the team's threads
live as long as that thread. While two threads each hold a team of N on an N-core machine, GNU OpenMP counts
more threads than cores and stops spinning at barriers: every one of the decoder's ~1,500 operations then
wakes its team through the kernel, and decoding runs about 20 % slower (2 cores, full-size bfloat16
NeuCodec: 40 instead of 49 audio-s/s, 1.63 instead of 1.99 cores busy). So in the engine process only the
decode thread keeps a team: the codec is loaded and warmed up on a thread that then ends (`run_on_fresh_thread`),
and every encode batch runs on a thread of its own that ends with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_fresh_thread(fn: Callable[..., T], *args: Any, name: str = "torch-once") -> T:
    """`fn(*args)` on a new thread that ends when it returns (its OpenMP team goes with it); its result, or its
    exception re-raised here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
