"""CPU per Order Submit of the ingest path's parse/validate/redact/hash stage, alone.

The same stage `tests/bench/ingest.py` times inside its full run, without wrk or a server,
so a change to the declared shapes can be judged in seconds:
`python tests/bench/parse_cost.py [--orders N] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson

from service.payloads import body_hash, parse_json, parse_order_submit
from tests.commerce_sim.seeds import seed_order_submit


def bodies(count: int) -> list[bytes]:
    seed = seed_order_submit()
    out = []
    for n in range(count):
        seed["order"]["id"] = f"o-bench-{n}"
        seed["order"]["lastModifiedTime"] = 1_700_000_000_000 + n
        out.append(orjson.dumps(seed))
    return out


def per_order_us(batch: list[bytes]) -> float:
    started = time.process_time()
    for body in batch:
        parse_order_submit(parse_json(body))
        body_hash(body)
    return (time.process_time() - started) / len(batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    batch = bodies(args.orders)
    per_order_us(batch[:1000])  # warm-up
    runs = sorted(per_order_us(batch) for _ in range(args.rounds))
    print(
        f"parse, validate, redact, hash: median {statistics.median(runs):.1f} us per Order Submit "
        f"(min {runs[0]:.1f}, max {runs[-1]:.1f}; {args.rounds} rounds of {args.orders})"
    )


if __name__ == "__main__":
    main()
