"""Issue 18's scenario at length: validation answers asked 50 ms after another process's 200.

`serve` toggles a return's quantity (the truth alternates between 1 and 0
available) while `serve --role validation` on the same SQLite store records
lifecycle steps for that order and answers questions about others; after each
200 the validation process is asked, and every answer that missed the write is
counted. Run: `python tests/bench/stale_answers.py [--checks 1000] [--delay-ms 50]`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.harness import free_port, local_url
from tests.integration import stale_answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=50)
    parser.add_argument(
        "--lifecycle-pause-ms",
        type=float,
        default=2,
        help="the validation process's pause between two lifecycle steps",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        db = directory / "stale.db"
        main_port, validation_port = free_port(), free_port()
        started = time.monotonic()
        with (
            stale_answers.serve(db, main_port, directory / "main.log"),
            stale_answers.serve(db, validation_port, directory / "validation.log", "--role", "validation"),
        ):
            outcome = asyncio.run(
                stale_answers.run(
                    local_url(main_port),
                    local_url(validation_port),
                    args.checks,
                    args.delay_ms / 1000,
                    args.lifecycle_pause_ms / 1000,
                )
            )
    print(
        f"{outcome.checks} checks in {time.monotonic() - started:.0f} s, "
        f"{outcome.background_questions} other questions to the validation process meanwhile: "
        f"{outcome.stale} stale answers ({outcome.contended} deliveries answered 503 and sent again)"
    )
    for example in outcome.examples:
        print("  " + example)
    sys.exit(1 if outcome.stale else 0)


if __name__ == "__main__":
    main()
