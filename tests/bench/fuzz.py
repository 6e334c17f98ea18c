"""10,000+ structure-aware fuzz cases through real HTTP into the real service on real SQLite.

`python tests/bench/fuzz.py [--cases N] [--seed S]` prints the counts issue 14 asks
for: cases, accepted, refused (4xx by status), 5xx, accepted with a negative/huge/non-finite
number in a kept field (or shown by a view), stored refusals, and the other rule breaks the
oracle (tests/fuzz/oracle.py) found. Exit status 1 if any rule broke.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz import oracle
from tests.fuzz.live import LiveService
from tests.fuzz.strategies import VALID, Case, mutated

ROTATION = [*(VALID[k] for k in VALID), *(mutated(VALID[k]) for k in VALID for _ in range(3))]
"""Each endpoint in turn (Hypothesis alone favours the first of its choices); a quarter valid."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--show", type=int, default=10, help="rule breaks to print in full")
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    by_kind: Counter[tuple[str, str]] = Counter()
    broken: list[str] = []

    def tally(case: Case, outcome: oracle.Outcome) -> None:
        counts["cases"] += 1
        counts["mutated" if case.mutation else "valid"] += 1
        counts["accepted" if outcome.accepted else f"refused {outcome.status}"] += 1
        counts["5xx"] += outcome.status >= 500
        counts["accepted with a negative/huge/non-finite kept number"] += outcome.accepted_bad_number
        counts["stored refusals"] += outcome.stored_refusal
        counts["cases breaking any rule"] += bool(outcome.problems)
        by_kind[(case.kind, "accepted" if outcome.accepted else str(outcome.status))] += 1
        if outcome.problems:
            broken.append(f"{case.kind} {case.leaf} {case.mutation} {case.value!r:.40}: {outcome.problems}")

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory, LiveService(Path(directory)) as live:
        oracle.prepare(live)

        for round_ in itertools.count():  # a small space (valid questions) runs out: seed anew
            remaining = args.cases - counts["cases"]
            if remaining <= 0:
                break
            for strategy in ROTATION:
                run_many(live, strategy, -(-remaining // len(ROTATION)), args.seed + round_, tally)
    _report(counts, by_kind, broken[: args.show], time.monotonic() - started)
    return 1 if broken else 0


def run_many(
    live: LiveService,
    strategy: st.SearchStrategy[Case],
    cases: int,
    at_seed: int,
    tally: Callable[[Case, oracle.Outcome], None],
) -> None:
    """`cases` examples of one strategy; Hypothesis only generates (no shrinking, no database)."""

    @seed(at_seed)
    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: Case) -> None:
        tally(case, oracle.run(live, case))

    one()


def _report(
    counts: Counter[str], by_kind: Counter[tuple[str, str]], broken: list[str], seconds: float
) -> None:
    order = [
        "cases",
        "valid",
        "mutated",
        "accepted",
        *sorted(k for k in counts if k.startswith("refused")),
        "5xx",
        "accepted with a negative/huge/non-finite kept number",
        "stored refusals",
        "cases breaking any rule",
    ]
    for key in order:
        print(f"{key:>55}: {counts[key]:,}")
    print(f"{'seconds':>55}: {seconds:.0f}")
    print("\nby endpoint:")
    for (kind, result), n in sorted(by_kind.items()):
        print(f"  {kind:<28} {result:<9} {n:,}")
    for line in broken:
        print("BROKEN", line)


if __name__ == "__main__":
    sys.exit(main())
