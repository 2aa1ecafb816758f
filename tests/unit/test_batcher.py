"""The batching rule, synchronously."""

from app.engine.batcher import BatchQueue, Job
from app.engine.messages import JobKind


def job(kind: JobKind, payload: int, t: float, cancelled: bool = False) -> Job:
    return Job(kind, payload, deliver=lambda r, e: None, is_cancelled=lambda: cancelled, enqueued_at=t)


def test_batches_by_size_and_kind_in_arrival_order() -> None:
    q = BatchQueue()
    for i in range(5):
        q.append(job(JobKind.DECODE, i, float(i)))
    q.append(job(JobKind.ENCODE, 99, 0.5))
    batch, dropped = q.next_batch(3)
    assert [j.payload for j in batch] == [0, 1, 2] and not dropped
    batch, _ = q.next_batch(3)
    assert [j.payload for j in batch] == [99]  # the encode job has waited longer than decode #3
    batch, _ = q.next_batch(3)
    assert [j.payload for j in batch] == [3, 4]
    assert len(q) == 0 and q.next_batch(3) == ([], [])


def test_cancelled_jobs_are_dropped_not_batched() -> None:
    q = BatchQueue()
    q.append(job(JobKind.DECODE, 0, 0, cancelled=True))
    q.append(job(JobKind.DECODE, 1, 1))
    q.append(job(JobKind.DECODE, 2, 2, cancelled=True))
    q.append(job(JobKind.DECODE, 3, 3))
    batch, dropped = q.next_batch(8)
    assert [j.payload for j in batch] == [1, 3]
    assert sorted(j.payload for j in dropped) == [0, 2]


def test_the_most_urgent_windows_go_first_and_equals_keep_their_order() -> None:
    q = BatchQueue()
    # a stream with 3 s of audio buffered, two streams still waiting for their first audio, one with 0.5 s left
    for payload, t, slack in [(0, 0.0, 3.0), (1, 0.1, -0.1), (2, 0.2, 0.5), (3, 0.3, -0.3), (4, 0.4, 3.0)]:
        q.append(Job(JobKind.DECODE, payload, deliver=lambda r, e: None, enqueued_at=t, slack=slack))
    assert [j.payload for j in q.next_batch(2)[0]] == [1, 3]  # deadlines 0.0 and 0.0: arrival order
    assert [j.payload for j in q.next_batch(2)[0]] == [2, 0]  # 0.7, then 3.0
    assert [j.payload for j in q.next_batch(2)[0]] == [4]


def test_the_lane_with_the_most_urgent_job_is_served() -> None:
    q = BatchQueue()
    q.append(Job(JobKind.ENCODE, "clip", deliver=lambda r, e: None, enqueued_at=0.0))
    q.append(Job(JobKind.DECODE, "window", deliver=lambda r, e: None, enqueued_at=1.0, slack=-2.0))
    assert [j.payload for j in q.next_batch(4)[0]] == ["window"]
    assert [j.payload for j in q.next_batch(4)[0]] == ["clip"]


def test_windows_of_the_leaders_length_fill_its_batch_first() -> None:
    q = BatchQueue()
    # by deadline: a 35-token first window, then 175-, 100-, 35-, 170- and 100-token windows
    for payload, size in enumerate([35, 175, 100, 35, 170, 100]):
        q.append(Job(JobKind.DECODE, payload, deliver=lambda r, e: None, enqueued_at=float(payload), size=size))
    assert [j.payload for j in q.next_batch(2)[0]] == [0, 3]  # the leader's length class, then by deadline
    assert [j.payload for j in q.next_batch(3)[0]] == [1, 4, 2]  # 175 and 170 pad into one pass; then the rest
    assert [j.payload for j in q.next_batch(3)[0]] == [5]
