"""CTC forced alignment: the most likely path of a known token sequence through a model's frame emissions.

The standard CTC topology: the targets with a blank before, between and after them (2L + 1 states); a path
stays in a state or moves one state on, and skips a blank between two different tokens (never between a
repeated token, which needs a blank to be told apart). Viterbi keeps, per frame and state, the best score and
which of the (at most three) predecessors gave it; the back-trace reads the path from the better of the two
final states. Ties go to staying (then to the nearer predecessor), as in torchaudio's `forced_align`.

Pure numpy: loops over frames, vectorized over states.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class AlignmentError(ValueError):
    """The targets cannot be aligned to these emissions (too few frames for them)."""


def min_frames(targets: Sequence[int]) -> int:
    """Frames a path through `targets` needs: one per token, plus one blank between each repeated pair."""
    t = np.asarray(targets)
    return int(len(t) + np.count_nonzero(t[1:] == t[:-1])) if len(t) else 0


def forced_align(log_probs: np.ndarray, targets: Sequence[int], blank: int) -> np.ndarray:
    """The Viterbi path: `(T, V)` log-probabilities, `L` target ids -> `(T,)` state per frame, in `0..2L`
    (even: a blank, odd `2k + 1`: target `k`). Raises `AlignmentError` when `T < min_frames(targets)`."""
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2:
        raise ValueError(f"log_probs must be (frames, vocabulary), got shape {lp.shape}")
    tgt = np.asarray(targets, dtype=np.int64)
    n_frames, n_labels = lp.shape
    if len(tgt) and (tgt.min() < 0 or tgt.max() >= n_labels or np.any(tgt == blank)):
        raise ValueError("targets must be vocabulary ids other than the blank")
    if n_frames < max(1, min_frames(tgt)):
        raise AlignmentError(f"{n_frames} frames cannot hold {len(tgt)} tokens ({min_frames(tgt)} frames needed)")
    n_states = 2 * len(tgt) + 1
    labels = np.full(n_states, blank, dtype=np.int64)
    labels[1::2] = tgt
    # a state may come from two back when it is a token and differs from the token before the blank between
    skip = np.zeros(n_states, dtype=bool)
    skip[3::2] = tgt[1:] != tgt[:-1]
    neg = -np.inf
    alpha = np.full(n_states, neg)
    alpha[0] = lp[0, blank]
    if n_states > 1:
        alpha[1] = lp[0, labels[1]]
    back = np.zeros((n_frames, n_states), dtype=np.int8)  # 0: stayed, 1: came from s-1, 2: from s-2
    candidates = np.empty((3, n_states))
    for t in range(1, n_frames):
        candidates[0] = alpha
        candidates[1, 0] = neg
        candidates[1, 1:] = alpha[:-1]
        candidates[2, :2] = neg
        candidates[2, 2:] = np.where(skip[2:], alpha[:-2], neg)
        choice = np.argmax(candidates, axis=0)  # the first of equal scores: stay, then s-1
        back[t] = choice
        alpha = candidates[choice, np.arange(n_states)] + lp[t, labels]
    state = n_states - 1 if n_states == 1 or alpha[-1] > alpha[-2] else n_states - 2
    path = np.empty(n_frames, dtype=np.int64)
    for t in range(n_frames - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    return path


def token_frames(path: np.ndarray, n_tokens: int) -> np.ndarray:
    """`(n_tokens, 2)` frame span `[start, end)` of each target token in a path of `forced_align`."""
    spans = np.zeros((n_tokens, 2), dtype=np.int64)
    on_token = (path % 2 == 1).nonzero()[0]
    k = path[on_token] // 2
    # every token is visited in one run of frames, in order: its first and last frame
    first = np.r_[True, k[1:] != k[:-1]]
    last = np.r_[k[1:] != k[:-1], True]
    spans[k[first], 0] = on_token[first]
    spans[k[last], 1] = on_token[last] + 1
    return spans
