"""The batching rule, synchronously."""

from app.engine.batcher import BatchQueue, Job


def job(kind: str, payload: int, t: float, cancelled: bool = False) -> Job:
    return Job(kind, payload, deliver=lambda r, e: None, is_cancelled=lambda: cancelled, enqueued_at=t)


def test_batches_by_size_and_kind_in_arrival_order() -> None:
    q = BatchQueue()
    for i in range(5):
        q.append(job("decode", i, float(i)))
    q.append(job("encode", 99, 0.5))
    batch, dropped = q.next_batch(3)
    assert [j.payload for j in batch] == [0, 1, 2] and not dropped
    batch, _ = q.next_batch(3)
    assert [j.payload for j in batch] == [99]  # the encode job has waited longer than decode #3
    batch, _ = q.next_batch(3)
    assert [j.payload for j in batch] == [3, 4]
    assert len(q) == 0 and q.next_batch(3) == ([], [])


def test_cancelled_jobs_are_dropped_not_batched() -> None:
    q = BatchQueue()
    q.append(job("decode", 0, 0, cancelled=True))
    q.append(job("decode", 1, 1))
    q.append(job("decode", 2, 2, cancelled=True))
    q.append(job("decode", 3, 3))
    batch, dropped = q.next_batch(8)
    assert [j.payload for j in batch] == [1, 3]
    assert sorted(j.payload for j in dropped) == [0, 2]


def test_put_back_keeps_order() -> None:
    q = BatchQueue()
    for i in range(4):
        q.append(job("decode", i, float(i)))
    batch, _ = q.next_batch(2)
    q.put_back(batch)
    assert [j.payload for j in q.next_batch(4)[0]] == [0, 1, 2, 3]
    assert q.depth("decode") == 0
