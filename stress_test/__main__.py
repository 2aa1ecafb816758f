"""`python -m stress_test`: load the API, print the report per concurrency level, optionally write JSON.

Exit status: 0 when every request succeeded, 1 when some failed, 2 on a configuration error or when the API
never became ready.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from stress_test.config import ConfigError, load_config
from stress_test.runner import run, summaries
from stress_test.stats import format_extra_report, format_report, format_sweep, results_json


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = load_config(argv)
    except ConfigError as exc:
        print(f"stress_test: {exc}", file=sys.stderr)
        return 2
    try:
        runs = asyncio.run(run(config))
    except TimeoutError as exc:
        print(f"stress_test: {exc}", file=sys.stderr)
        return 2
    for level in runs:
        print(format_report(level.summary))
        print()
        print(format_extra_report(level.summary, stream=config.stream))
        print()
    if len(runs) > 1:
        print(format_sweep(summaries(runs)))
    sys.stdout.flush()
    if config.json_out is not None:
        try:
            config.json_out.parent.mkdir(parents=True, exist_ok=True)
            config.json_out.write_text(
                results_json(config.public_dict(), [(r.summary, r.results) for r in runs]) + "\n", encoding="utf-8"
            )
        except OSError as exc:
            print(f"stress_test: cannot write {config.json_out}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"results written to {config.json_out}", file=sys.stderr)
    return 1 if any(r.summary.failed for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
