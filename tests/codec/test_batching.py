"""Bucket choice and batch planning (pure functions, issue point 6)."""

from __future__ import annotations

import pytest

from app.codec.batching import DecodeBatch, plan_batches, select_bucket


@pytest.mark.parametrize(
    "length,buckets,expected",
    [
        (10, [25, 50, 100], 25),
        (25, [25, 50, 100], 25),
        (26, [50, 25, 100], 50),
        (101, [25, 50, 100], None),
        (3, [], None),
    ],
)
def test_select_bucket(length: int, buckets: list[int], expected: int | None) -> None:
    assert select_bucket(length, buckets) == expected


def _covers(plan: list[DecodeBatch], n: int) -> None:
    seen = sorted(i for batch in plan for i in batch.indices)
    assert seen == list(range(n))


def test_plan_groups_by_bucket_and_chunks() -> None:
    lengths = [10, 30, 30, 120, 50, 25, 20, 49]
    plan = plan_batches(lengths, max_batch_size=2, buckets=[25, 50, 100])
    _covers(plan, len(lengths))
    assert plan == [
        DecodeBatch((5, 6), 25, 25),
        DecodeBatch((0,), 25, 25),
        DecodeBatch((4, 7), 50, 50),
        DecodeBatch((1, 2), 50, 50),
        DecodeBatch((3,), 120, None),  # longer than every bucket: eager, exact length
    ]


def test_plan_eager_batches_equal_lengths_and_limits_padding() -> None:
    lengths = [40, 40, 40, 10, 39, 12]
    plan = plan_batches(lengths, max_batch_size=16)
    _covers(plan, len(lengths))
    assert plan[0] == DecodeBatch((0, 1, 2, 4), 40, None)
    assert plan[1] == DecodeBatch((5, 3), 12, None)
    for batch in plan:
        assert all(batch.padded_len - lengths[i] <= 0.25 * batch.padded_len for i in batch.indices)


def test_plan_respects_max_batch_size_without_buckets() -> None:
    plan = plan_batches([7] * 5, max_batch_size=2)
    assert [batch.size for batch in plan] == [2, 2, 1]
    assert all(batch.padded_len == 7 and batch.bucket is None for batch in plan)


def test_plan_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        plan_batches([0], 4)
    with pytest.raises(ValueError):
        plan_batches([3], 0)
    assert plan_batches([], 4) == []
