"""The reference forced aligner: `ctc-forced-aligner`'s C++ kernel (deskpai/ctc_forced_aligner, pinned in
requirements-reference.txt), a port of torchaudio's `forced_align` CPU kernel, called through the package's
own ctypes binding `ctc_forced_aligner/ctc_aligner.py`.

That module is loaded by its file alone: the package's `__init__` imports librosa and an ONNX model download,
which the tests do not need (installed with --no-deps, like the NeuCodec reference).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def _binding():
    spec = importlib.util.find_spec("ctc_forced_aligner")  # finds the package without importing it
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps -r requirements-reference.txt"
    path = Path(next(iter(spec.submodule_search_locations))) / "ctc_aligner.py"
    module_spec = importlib.util.spec_from_file_location("ctc_forced_aligner_kernel", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


_kernel = _binding()


def reference_path(log_probs: np.ndarray, targets: np.ndarray, blank: int) -> np.ndarray:
    """torchaudio-style frame labels `(T,)`: the emitted label per frame (the blank or a target id)."""
    paths, _ = _kernel.align_sequences(log_probs[None].astype(np.float32), np.asarray(targets)[None], blank)
    return paths[0]


def reference_token_frames(log_probs: np.ndarray, targets: np.ndarray, blank: int) -> np.ndarray:
    """`(L, 2)` frame spans `[start, end)` per target token, read from the reference's frame labels as
    torchaudio's `merge_tokens` does: a new token starts where the label changes to a non-blank one."""
    labels = reference_path(log_probs, targets, blank)
    changes = np.r_[True, labels[1:] != labels[:-1]]
    starts = np.flatnonzero(changes)
    ends = np.r_[starts[1:], len(labels)]
    keep = labels[starts] != blank
    spans = np.stack([starts[keep], ends[keep]], axis=1)
    assert len(spans) == len(targets), "the reference path does not visit every target once"
    return spans
