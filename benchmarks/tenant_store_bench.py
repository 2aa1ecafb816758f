"""What a key's limits, usage and a shared context add to a request, on a store (prints, asserts nothing).

Times the store work one request does, each step alone, `--repeats` times in one thread (the service runs each
in a worker thread, off the event loop): the admission of a key with every limit (one transaction: per-minute
windows, the day's audio, a stream lease), the same for a key and its tenant both limited (one transaction,
two locks, two leases), a WebSocket text message's characters charged to both, the lease's release, the usage row's upsert at the end, and the
shared context's read (a request with a `context.id`) and its claim and resolution writes (off the request's
path). Prints the median and 95th percentile in milliseconds, and the share of a 1 s request each is.

    python -m benchmarks.tenant_store_bench --url sqlite:////tmp/bench.db [--repeats 500]
    python -m benchmarks.tenant_store_bench --url postgresql://user@127.0.0.1:5432/db
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from app.service import migrations
from app.service.context import SpeechContext
from app.service.leases import LimitStore, Subject, tenant_subject
from app.service.shared_context import SharedContextStore, _apply
from app.service.usage import UsageRow, add_row, utc_hour
from app.service.voice_store import open_engine

LIMITS = {"streams": 1_000_000, "requests": 1_000_000_000, "chars": 1_000_000_000, "audio": 1_000_000_000}


def timed(work: Callable[[int], object], repeats: int) -> list[float]:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        work(i)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    engine = open_engine(args.url)
    migrations.upgrade(engine)
    limits = LimitStore(engine)
    leases: list[str] = []
    contexts = SharedContextStore(engine, ttl=120)
    context = SpeechContext("the previous sentence, as spoken", tuple(range(150)), "idayu")
    row = UsageRow("bench", "key_bench", "idayu", "speech", utc_hour(datetime.now(UTC)), 1, 40, 2400)
    both = [Subject("key_bench2", LIMITS), Subject(tenant_subject("bench"), LIMITS, "tenant")]
    chars = [Subject(s.id, {"chars": LIMITS["chars"]}, s.whose) for s in both]
    steps: dict[str, Callable[[int], object]] = {
        "admission (all limits + lease)": lambda i: leases.append(limits.admit("key_bench", LIMITS, 40, 30)),
        "admission, key and tenant": lambda i: limits.admit_all(both, 40, 30),
        "websocket text charge (both)": lambda i: limits.admit_all(chars, 12, 0),
        "lease release": lambda i: limits.drop(leases[i]),
        "usage upsert": lambda i: add_row(engine, row),
        "context read": lambda i: contexts._read(("bench", f"c{i % 50}")),
        "context claim (off path)": lambda i: _apply(engine, ("claim", ("bench", f"c{i % 50}"), f"{i}", 1e12), 0),
        "context resolve (off path)": lambda i: _apply(
            engine, ("resolve", ("bench", f"c{i % 50}"), f"{i}", context, 1e12), 0
        ),
    }
    print(f"store {engine.dialect.name}, {args.repeats} repeats each, one thread")
    for name, work in steps.items():
        times = sorted(timed(work, args.repeats))
        median, p95 = statistics.median(times), times[int(0.95 * len(times)) - 1]
        print(f"  {name:32s} median {median:6.2f} ms  p95 {p95:6.2f} ms  ({median / 10:.2f}% of a 1 s request)")
    engine.dispose()


if __name__ == "__main__":
    main()
