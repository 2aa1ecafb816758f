"""The CTC Viterbi alignment: known boundaries on synthetic emissions, the best path by brute force, and the
same boundaries as the reference kernel (torchaudio's `forced_align`, via ctc-forced-aligner)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.align.ctc import AlignmentError, forced_align, min_frames, token_frames
from tests.align.reference import reference_token_frames

BLANK = 0


def emissions_for(n_frames: int, vocab: int, runs: list[tuple[int, int, int]], rng: np.random.Generator) -> np.ndarray:
    """Noisy log-probabilities where token `label` is likely on frames `[start, end)` and the blank elsewhere."""
    logits = rng.normal(0.0, 0.3, (n_frames, vocab))
    logits[:, BLANK] += 4.0
    for label, start, end in runs:
        logits[start:end, label] += 8.0
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def score(log_probs: np.ndarray, path: np.ndarray, targets: list[int]) -> float:
    labels = np.where(path % 2 == 1, np.asarray(targets + [0])[path // 2], BLANK)
    return float(log_probs[np.arange(len(path)), labels].sum())


@pytest.mark.parametrize("seed", range(3))
def test_known_boundaries_come_back(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # "hello": the repeated l needs a blank between its two runs
    runs = [(3, 2, 5), (4, 5, 7), (5, 9, 12), (5, 13, 15), (6, 18, 25)]
    log_probs = emissions_for(30, 8, runs, rng)
    targets = [label for label, _, _ in runs]
    spans = token_frames(forced_align(log_probs, targets, BLANK), len(targets))
    assert spans.tolist() == [[s, e] for _, s, e in runs]


def test_a_tight_fit_uses_every_frame() -> None:
    rng = np.random.default_rng(1)
    targets = [2, 2, 3]  # a repeat: 4 frames at least (token, blank, token, token)
    assert min_frames(targets) == 4
    log_probs = np.log(rng.dirichlet(np.ones(5), size=4))
    path = forced_align(log_probs, targets, BLANK)
    assert path.tolist() == [1, 2, 3, 5]
    with pytest.raises(AlignmentError, match="3 frames cannot hold 3 tokens"):
        forced_align(log_probs[:3], targets, BLANK)


def test_the_path_is_the_best_one_by_brute_force() -> None:
    """Every frame labelling that collapses to the targets, scored: the Viterbi path scores the best."""
    rng = np.random.default_rng(7)
    for targets in ([1, 2], [1, 1], [2, 1, 2]):
        for n_frames in (len(targets) + 1, 5, 7):
            log_probs = np.log(rng.dirichlet(np.ones(3), size=n_frames))
            best = -np.inf
            for labels in itertools.product(range(3), repeat=n_frames):
                collapsed = [k for k, _ in itertools.groupby(labels) if k != BLANK]
                if collapsed == targets:
                    best = max(best, float(log_probs[np.arange(n_frames), list(labels)].sum()))
            path = forced_align(log_probs, targets, BLANK)
            assert score(log_probs, path, targets) == pytest.approx(best)


def test_bad_targets_are_refused() -> None:
    log_probs = np.zeros((5, 4))
    for targets in ([0, 1], [4], [-1]):
        with pytest.raises(ValueError, match="vocabulary ids"):
            forced_align(log_probs, targets, BLANK)
    with pytest.raises(ValueError, match="frames, vocabulary"):
        forced_align(np.zeros(5), [1], BLANK)


@pytest.mark.parametrize("seed", range(20))
def test_same_boundaries_as_the_reference_on_random_emissions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    vocab = int(rng.integers(3, 32))
    n_tokens = int(rng.integers(1, 40)) if seed < 15 else int(rng.integers(100, 300))  # long: > 127 states
    targets = rng.integers(1, vocab, n_tokens)
    if seed % 2:  # runs of repeats, which need blanks between them
        targets = np.repeat(targets[: max(1, n_tokens // 2)], 2)
    n_frames = min_frames(targets) + int(rng.integers(0, 60))
    log_probs = np.log(rng.dirichlet(np.ones(vocab) * 0.5, size=n_frames)).astype(np.float32)
    mine = token_frames(forced_align(log_probs, targets, BLANK), len(targets))
    np.testing.assert_array_equal(mine, reference_token_frames(log_probs, targets, BLANK))
