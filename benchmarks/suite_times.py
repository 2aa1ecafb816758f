"""Two runs of the test suite compared from their JUnit XML (pytest's `--junitxml`), as issue 30 asks of
`make test`: the whole of each, and the tests both ran (same ids: what a change did to the time of what was
already tested, apart from what new tests add).

    PYTEST_ADDOPTS=--junitxml=/tmp/old.xml bash .ci/run   # on a clean clone of the old commit, then the new
    python -m benchmarks.suite_times /tmp/old.xml /tmp/new.xml

Run both on the same machine, one after the other, on a quiet box: compare only figures measured so.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    seconds: float  # setup, call and teardown (pytest's junit_duration_report default)
    outcome: str  # passed, failed, skipped


def read(path: Path) -> dict[str, Result]:
    """Each test's id (`classname::name`) and result."""
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        outcome = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else "passed"
        results[f"{case.get('classname', '')}::{case.get('name', '')}"] = Result(float(case.get("time", 0)), outcome)
    return results


def file_of(test_id: str) -> str:
    """`tests.unit.test_x.Class::name` -> `tests/unit/test_x.py`."""
    parts = []
    for part in test_id.split("::")[0].split("."):
        parts.append(part)
        if part.startswith("test_"):
            break
    return "/".join(parts) + ".py"


def by_file(results: dict[str, Result]) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)
    for test_id, r in results.items():
        seconds[file_of(test_id)] += r.seconds
    return seconds


def report(old: dict[str, Result], new: dict[str, Result], top: int = 10) -> list[str]:
    lines = []
    for name, run in (("old", old), ("new", new)):
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(Counter(r.outcome for r in run.values()).items()))
        lines.append(f"{name}: {len(run)} tests ({outcomes}), {sum(r.seconds for r in run.values()):.0f} s of tests")
    both = old.keys() & new.keys()
    t_old, t_new = sum(old[t].seconds for t in both), sum(new[t].seconds for t in both)
    lines.append(f"the {len(both)} tests both ran: old {t_old:.0f} s, new {t_new:.0f} s (new/old {t_new / max(t_old, 1e-9):.2f})")
    files_old, files_new = by_file(old), by_file(new)
    added = sorted(files_new.keys() - files_old.keys(), key=lambda f: -files_new[f])
    lines.append(f"test files only in new: {len(added)}, {sum(files_new[f] for f in added):.0f} s; the longest:")
    lines += [f"  {files_new[f]:7.1f} s  {f}" for f in added[:top]]
    common = sorted(files_old.keys() & files_new.keys(), key=lambda f: files_old[f] - files_new[f])
    lines.append("files in both, the most slower first:")
    lines += [f"  {files_old[f]:7.1f} -> {files_new[f]:7.1f} s  {f}" for f in common[:top]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suite_times", description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    print("\n".join(report(read(args.old), read(args.new), args.top)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
