"""Pure batching rules of the codec runtime: which bucket a window goes to, and how windows form batches.

No torch here; tested synchronously. A "bucket" is a padded token length with captured CUDA graphs (one per
batch size 1..max_batch_size). Padding is exact (the decoder masks it), so a window may go to any bucket at
least as long as itself; the rule picks the smallest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_PADDING = 0.25  # on CPU, a window pads into a longer one's pass only if it adds at most this share of padding


@dataclass(frozen=True)
class DecodeBatch:
    """Windows decoded together: positions in the caller's list, and the length they are padded to."""

    indices: tuple[int, ...]
    padded_len: int
    bucket: int | None  # the graph bucket (== padded_len), None for an eager batch

    @property
    def size(self) -> int:
        return len(self.indices)


def select_bucket(length: int, buckets: Sequence[int]) -> int | None:
    """Smallest bucket >= `length`; None when `length` exceeds every bucket (or there are none)."""
    fitting = [bucket for bucket in buckets if bucket >= length]
    return min(fitting) if fitting else None


def plan_batches(
    lengths: Sequence[int],
    max_batch_size: int,
    buckets: Sequence[int] = (),
    max_padding: float = MAX_PADDING,
) -> list[DecodeBatch]:
    """Group windows of `lengths` tokens into batches of at most `max_batch_size`.

    - Windows that fit a bucket are grouped by their bucket and padded to it (graph batches), longest first.
    - The others (longer than every bucket, or no buckets) form eager batches, longest first, each padded to
      its longest window; a window joins the current batch only if its padding is <= `max_padding` of the
      padded length (on CPU padding costs compute), so equal lengths batch together and very different ones
      do not.

    Every index appears in exactly one batch. Graph batches come first (ascending bucket), then eager ones.
    """
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
    if any(length < 1 for length in lengths):
        raise ValueError("every window needs at least one token")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    by_bucket: dict[int, list[int]] = {}
    eager: list[int] = []
    for i in order:
        bucket = select_bucket(lengths[i], buckets)
        if bucket is None:
            eager.append(i)
        else:
            by_bucket.setdefault(bucket, []).append(i)

    batches = [
        DecodeBatch(tuple(members[start : start + max_batch_size]), bucket, bucket)
        for bucket, members in sorted(by_bucket.items())
        for start in range(0, len(members), max_batch_size)
    ]
    current: list[int] = []
    for i in eager:
        if current:
            padded_len = lengths[current[0]]
            if len(current) < max_batch_size and padded_len - lengths[i] <= max_padding * padded_len:
                current.append(i)
                continue
            batches.append(DecodeBatch(tuple(current), padded_len, None))
        current = [i]
    if current:
        batches.append(DecodeBatch(tuple(current), lengths[current[0]], None))
    return batches
