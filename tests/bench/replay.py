"""Replay speed: rebuild every read model from a generated SQLite store of N events.

The store is generated (not checked in) through the real aggregates: whole
return lifecycles (order submitted, shipped, validated, return received,
authorized, received twice, refunded, settled, credited), saved many
aggregates per transaction. Baseline in the same run: one process reading and
decoding the notification log alone (the replay itself uses one process per
core, up to 4).

Then, in one process over the first 100,000 events (at most), what each stage of the replay costs
in CPU per event, against the CPU the target leaves per event on this machine's cores.

Run: `python tests/bench/replay.py [--events 1000000] [--keep PATH]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain.orders import Order
from domain.returns import ReturnRequest
from projections.positions import side_database
from projections.progress import ProgressBar
from projections.read_models import ReadModels, transition_row, view_row
from projections.relay import read_page
from projections.replay import collector_paused, default_workers, rebuild
from service.store import EventStore, open_store

EVENTS_PER_PAIR = 13
TARGET = 100_000


def order_snapshot(n: int) -> dict[str, object]:
    return {
        "id": f"o{n}",
        "state": "SUBMITTED",
        "currency": "USD",
        "siteId": "siteUS",
        "profileId": "p1",
        "submittedDate": "2026-11-01T10:00:00Z",
        "priceInfo": {
            "total": "268.40",
            "amount": "261.90",
            "shipping": "6.50",
            "tax": "0.00",
            "discountAmount": "29.10",
        },
        "commerceItems": [
            {
                "id": "ci1",
                "productId": "prod1",
                "catalogRefId": "sku1",
                "displayName": "Military Jacket",
                "quantity": 2,
                "returnedQuantity": 0,
                "amount": "291.00",
                "listPrice": "145.50",
                "tax": "0.00",
                "orderDiscountShare": "0.00",
            }
        ],
        "shippingGroups": [
            {
                "id": "sg1",
                "state": "INITIAL",
                "shippingMethod": "ground",
                "trackingNumber": None,
                "actualShipDate": None,
                "amount": "6.50",
                "shippingTax": "0.00",
                "items": [{"commerceItemId": "ci1", "quantity": 2, "returnedQuantity": 0}],
            }
        ],
        "paymentGroups": [
            {
                "id": "pg1",
                "paymentMethod": "tokenizedCreditCard",
                "currencyCode": "USD",
                "state": "AUTHORIZED",
                "amount": "268.40",
                "amountAuthorized": "268.40",
                "amountCredited": "0.00",
            }
        ],
    }


PLAN = {
    "source": "calculated",
    "currency": "USD",
    "total": "268.40",
    "payments": {"pg1": "268.40"},
    "calculation": None,
    "manualReasons": [],
}


def lifecycle(n: int) -> tuple[Order, ReturnRequest]:
    actor, cause = "operator:bench", f"sha256:{n:064x}"
    order = Order.submit(
        order_snapshot(n),
        last_modified=n,
        fingerprint=f"f{n}",
        origin="order-submit",
        actor="commerce-webhook",
        cause=cause,
    )
    order.ship(
        shipping_group_id="sg1",
        items=None,
        tracking_number=f"1Z{n}",
        ship_date="2026-11-02T10:00:00Z",
        actor=actor,
        cause=cause,
    )
    for context, fingerprint in (
        ("Initiate_Return", "a"),
        ("CalculateRefund_Return", "b"),
        ("Submit_Return", "c"),
    ):
        order.record_validation(
            context=context,
            facts={},
            answer={"context": context},
            answer_fingerprint=fingerprint,
            refund_quote=None,
            actor="commerce-webhook",
            cause=cause,
        )
    ret = ReturnRequest.receive_request(
        {
            "id": f"R{n}",
            "orderId": f"o{n}",
            "processName": "Return",
            "state": "PENDING_CUSTOMER_ACTION",
            "returnItemList": [
                {
                    "returnItemId": f"R{n}-1",
                    "commerceItemId": "ci1",
                    "shippingGroupId": "sg1",
                    "state": "INITIAL",
                    "quantityToReturn": 2,
                    "quantityReceived": 0,
                    "returnShipmentRequired": True,
                    "refundAmount": "0.00",
                }
            ],
            "refund": {},
            "details": {},
        },
        version_key=n,
        fingerprint=f"r{n}",
        actor="commerce-webhook",
        cause=cause,
    )
    order.link_return(f"R{n}", actor="commerce-webhook", cause=cause)
    ret.authorize(
        rma=f"RMA{n}",
        tracking_number=None,
        return_label=None,
        shipment_required=None,
        actor=actor,
        cause=cause,
    )
    for _ in range(2):
        ret.receive([({"commerceItemId": "ci1"}, 1)], actor=actor, cause=cause)
    ret.initiate_refund(PLAN, actor=actor, cause=cause)
    credited = ret.settle_refund(actor=actor, cause=cause)
    order.credit(credited, return_id=f"R{n}", actor=actor, cause=cause)
    return order, ret


def generate(store: EventStore, events: int) -> int:
    pairs = max(1, events // EVENTS_PER_PAIR)
    progress = ProgressBar("generate")
    batch: list[Order | ReturnRequest] = []
    for n in range(pairs):
        batch.extend(lifecycle(n))
        if len(batch) >= 400:
            store.save(*batch)
            batch.clear()
            progress((n + 1) * EVENTS_PER_PAIR, pairs * EVENTS_PER_PAIR)
    if batch:
        store.save(*batch)
    progress(pairs * EVENTS_PER_PAIR, pairs * EVENTS_PER_PAIR)
    return int(store.recorder.max_notification_id() or 0)


def read_only(store: EventStore) -> float:
    started = time.perf_counter()
    position = count = 0
    while page := read_page(store, position, 10_000):
        position = page[-1][0]
        count += len(page)
    return count / (time.perf_counter() - started)


def stage_costs(store: EventStore, scratch: Path, events: int = 100_000) -> tuple[dict[str, float], int]:
    """CPU microseconds per event of each replay stage, one process, as `rebuild` runs them;
    and over how many events."""
    clock = time.process_time
    spent = dict.fromkeys(
        (
            "read and decode",
            "fold (the aggregates' own event methods)",
            "transition rows",
            "insert transitions",
            "view rows",
        ),
        0.0,
    )
    names = list(spent)
    models = ReadModels(str(scratch))
    models.begin_rebuild()
    folded: dict[Any, Any] = {}
    position = count = 0
    with collector_paused():
        while count < events:
            t0 = clock()
            page = read_page(store, position, 10_000)
            if not page:
                break
            t1 = clock()
            aggregates = []
            for _, event in page:
                aggregate = event.mutate(folded.get(event.originator_id))  # type: ignore[attr-defined]
                folded[event.originator_id] = aggregate
                aggregates.append(aggregate)
            t2 = clock()
            rows = [transition_row(n, e, a) for (n, e), a in zip(page, aggregates, strict=True)]
            t3 = clock()
            models.add_rebuilt_transitions(rows)
            t4 = clock()
            for name, took in zip(names[:4], (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                spent[name] += took
            position, count = page[-1][0], count + len(page)
        t0 = clock()
        [view_row(a) for a in folded.values()]
        spent["view rows"] = clock() - t0
    models.close()
    return {name: took / max(count, 1) * 1e6 for name, took in spent.items()}, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", help="generate into (or reuse) this SQLite file")
    args = parser.parse_args()
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "replay.db"
    store = open_store(f"sqlite:///{path}")
    total = int(store.recorder.max_notification_id() or 0)
    if total == 0:
        started = time.perf_counter()
        total = generate(store, args.events)
        print(f"generated {total:,} events in {time.perf_counter() - started:.1f} s")
    else:
        print(f"reusing {path} ({total:,} events)")
    baseline = read_only(store)
    with tempfile.TemporaryDirectory() as scratch:
        costs, staged = stage_costs(store, Path(scratch) / "stages.db")
    models = ReadModels(side_database(f"sqlite:///{path}"))
    result = rebuild(
        store,
        models,
        ProgressBar("replay"),
        workers=default_workers(store),
        reopen=partial(open_store, f"sqlite:///{path}"),
    )
    models.close()
    store.close()
    print(f"baseline (read + decode only): {baseline:,.0f} events/s")
    print(
        f"replay (fold + rebuild read models): {result.rate:,.0f} events/s "
        f"({result.events:,} events, {result.aggregate_count:,} aggregates, "
        f"{result.workers} processes, {result.seconds:.1f} s)"
    )
    print(f"ratio replay/baseline: {result.rate / baseline:.2f}; target >= {TARGET:,} events/s")
    cores = len(os.sched_getaffinity(0))
    stages = sum(costs.values())
    print(
        "phases (s): "
        + ", ".join(f"{name} {took:.1f}" for name, took in result.phases.items())
        + f"; {result.events / result.phases['fold']:,.0f} events/s in the fold phase alone"
    )
    print(f"\nstages of the replay, one process, first {staged:,} events (CPU us per event):")
    for name, micros in costs.items():
        print(f"  {name:44}{micros:>7.2f}")
    print(f"  {'together':44}{stages:>7.2f}")
    print(
        f"CPU per event the target leaves on all {cores} cores: {1e6 * cores / TARGET:.1f} us; "
        f"the stages take {stages * TARGET / (1e6 * cores):.2f} x that "
        f"(before the merge and the swap, which run alone)"
    )


if __name__ == "__main__":
    main()
