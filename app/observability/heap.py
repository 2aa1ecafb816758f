"""The start-up heap, frozen: a full garbage collection never walks the models' and libraries' objects again.

A front-end with the text normalizer loaded tracks about half a million objects (malaya, torch, pydantic, the
app), alive for the life of the process. Python's oldest-generation collection walks every one of them:
measured on the dev box, a 450 ms pause of the event loop (and of every request on it) every few requests, and
150 ms for the middle one; the engine's decode thread stalls the same way. `gc.freeze()` once start-up is done
moves them to a permanent generation that no collection visits (vLLM's servers do the same after loading);
what requests allocate is collected as before.

The first freeze in a process collects everything first (in production: the only one, before the process says
it is ready; a start-up cycle frozen alive would otherwise never be freed, and extension types such as nanobind's
report it as a leak at exit). A later one (the test suite starts hundreds of apps in one process) collects only
the young generations, since a full collection walks every object the process holds; `thaw_heap` at each
shutdown gives the objects back to the collector, so what such a start froze is freed after it.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


_collected = False  # this process has had its full collection


def freeze_startup_heap(what: str) -> int:
    """Collect start-up's garbage (all of it the first time, else the young generations), then freeze every live
    object; returns how many are frozen."""
    global _collected
    gc.collect(1 if _collected else 2)
    _collected = True
    gc.freeze()
    frozen = gc.get_freeze_count()
    logger.info("%s: %d start-up objects frozen out of garbage collection", what, frozen)
    return frozen


def thaw_heap() -> None:
    """The frozen objects back in the oldest generation, collected as usual from now on."""
    gc.unfreeze()
