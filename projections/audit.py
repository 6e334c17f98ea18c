"""The analyst's view: what happened to a return or an order, when, why, and what Commerce was told.

Everything here is read from the event history (and the record of Commerce
calls), so the answer for any past moment is the answer the system would have
given then.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEvent

from domain.identity import order_uuid, return_uuid
from domain.orders import Order
from domain.views import event_view, order_view, return_view
from projections.read_models import TRANSITION_COLUMNS, transition_row
from projections.relay import read_page
from projections.replay import Progress


class NotFound(LookupError):
    pass


@dataclass
class Timeline:
    kind: str
    commerce_id: str
    events: list[dict[str, Any]]
    rows: list[tuple[Any, ...]]
    state: dict[str, Any]
    calls: list[dict[str, Any]]
    as_of: str | None
    version: int
    findings: list[dict[str, Any]] = field(default_factory=list)
    """What reconciliation runs found for it (`rf_reconcile_findings`)."""


def parse_time(text: str) -> datetime:
    """ISO-8601; a time without a zone is UTC; always answered in UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def timeline(
    store: Application[UUID],
    commerce_id: str,
    *,
    as_of: datetime | None = None,
    version: int | None = None,
    calls: list[dict[str, Any]] | None = None,
) -> Timeline:
    """A return's (or, failing that, an order's) events up to a moment, and its state then."""
    found = _history(store, commerce_id)
    if found is None:
        raise NotFound(f"no return or order {commerce_id}")
    kind, aggregate_id, events = found
    if as_of is not None:
        events = [e for e in events if e.timestamp <= as_of]
    if version is not None:
        events = [e for e in events if e.originator_version <= version]
    if not events:
        raise NotFound(f"{kind} {commerce_id} did not exist yet at that point")
    at = events[-1].originator_version
    try:
        aggregate: Aggregate = store.repository.get(aggregate_id, version=at)
    except AggregateNotFoundError as exc:
        raise NotFound(str(exc)) from None
    state = order_view(aggregate) if isinstance(aggregate, Order) else return_view(aggregate)  # type: ignore[arg-type]
    if kind == "return":
        then = as_of if as_of is not None else events[-1].timestamp if version is not None else None
        state["replacementOrder"] = _replacement(store, state, then)
    rows = [transition_row(0, e, aggregate) for e in events]
    shown_calls = [c for c in calls or [] if c["version"] <= at]
    if as_of is not None:
        shown_calls = [c for c in shown_calls if parse_time(c["at"]) <= as_of]
    return Timeline(
        kind,
        commerce_id,
        [event_view(e) for e in events],
        rows,
        state,
        shown_calls,
        as_of.isoformat().replace("+00:00", "Z") if as_of else None,
        at,
    )


def _replacement(
    store: Application[UUID], state: dict[str, Any], until: datetime | None
) -> dict[str, Any] | None:
    """An exchange's replacement order as it stood then (None: now): its id, state and shipping."""
    replacement_id = state.get("replacementOrderId")
    if not replacement_id:
        return None
    events = [
        e
        for e in store.events.get(order_uuid(replacement_id))
        if isinstance(e, DomainEvent) and (until is None or e.timestamp <= until)
    ]
    if not events:
        return {"id": replacement_id, "state": None, "shippingGroups": []}
    order: Aggregate = store.repository.get(order_uuid(replacement_id), version=events[-1].originator_version)
    view = order_view(order)  # type: ignore[arg-type]
    groups = [{"id": g["id"], "state": g["state"]} for g in view["shippingGroups"]]
    return {"id": replacement_id, "state": view["state"], "shippingGroups": groups}


def _history(store: Application[UUID], commerce_id: str) -> tuple[str, UUID, list[DomainEvent]] | None:
    for kind, aggregate_id in (("return", return_uuid(commerce_id)), ("order", order_uuid(commerce_id))):
        events = [e for e in store.events.get(aggregate_id) if isinstance(e, DomainEvent)]
        if events:
            return kind, aggregate_id, events
    return None


def render(line: Timeline, fmt: str) -> str:
    if fmt == "json":
        document = {
            "kind": line.kind,
            "id": line.commerce_id,
            "asOf": line.as_of,
            "version": line.version,
            "events": line.events,
            "commerceCalls": line.calls,
            "state": line.state,
            "reconciliation": line.findings,
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TRANSITION_COLUMNS[1:])
        writer.writerows(row[1:] for row in line.rows)
        return out.getvalue()
    return _table(line)


def _table(line: Timeline) -> str:
    out = [
        f"{line.kind} {line.commerce_id}"
        + (f" as of {line.as_of}" if line.as_of else "")
        + f" (version {line.version})",
        "",
    ]
    header = ("v", "time", "event", "trigger", "from -> to", "actor", "cause", "details")
    table = [header]
    for row in line.rows:
        details = "; ".join(x for x in (row[11], row[12]) if x)
        table.append(
            (
                str(row[3]),
                row[4][:23],
                row[5].split(".")[-1],
                row[6] or "",
                f"{row[7] or '-'} -> {row[8]}",
                row[9],
                (row[10] or "")[:19],
                details[:70] + ("..." if len(details) > 70 else ""),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    overrides = [e for e in line.events if e["type"] == "ReturnRequest.CommerceOverridden"]
    if overrides:
        out += ["", "Commerce overrides (Commerce's word stands):"]
        out += [f"  v{e['version']}  {e['from']} -> {e['to']}: {e.get('reason')}" for e in overrides]
    out += ["", "Commerce calls:"]
    if not line.calls:
        out.append("  (none recorded)")
    for call in line.calls:
        answer = (
            f"-> {call['status']} after {call['attempts']} attempt(s)"
            if call["attempts"]
            else "-> not sent (no RETURNFLOW_COMMERCE_URL; logged)"
        )
        out.append(
            f"  {call['at']}  {call['method']} {call['path']}  {answer}, v{call['version']}"
            + (f"  DEAD-LETTERED: {call['reason']}" if call.get("reason") else "")
        )
    if line.findings:
        out += ["", "Reconciliation (Commerce's view against ours):"]
        out += [
            f"  run {f['run_id']} {f['at']}  {f['field']}: ours {f['ours']}, Commerce "
            f"{f['theirs']} -> {f['verdict']}{', fixed' if f['fixed'] else ''}"
            for f in line.findings
        ]
    out += ["", "State:"]
    state = line.state
    out.append(f"  state {state['state']}")
    if line.kind == "return":
        for item in state["returnItemList"]:
            out.append(
                f"  item {item['returnItemId']} ({item['commerceItemId']}): {item['state']}, "
                f"received {item['quantityReceived']} of {item['quantityToReturn']}"
            )
        plan = state.get("refundPlan")
        if plan:
            payments = ", ".join(f"{k} {v}" for k, v in sorted(plan["payments"].items()))
            out.append(f"  refund {plan['total']} {plan['currency']} ({plan['source']}): {payments}")
        out += _exchange_lines(state)
    else:
        out += _order_links(state)
        for group in state["paymentGroups"]:
            out.append(
                f"  payment {group['id']} ({group['paymentMethod']}): paid {group['amount']}, "
                f"credited {group['amountCredited']}"
            )
        for group in state["shippingGroups"]:
            shipped = ", ".join(
                f"{i['commerceItemId']} {i['quantityShipped']}/{i['quantity']}" for i in group["items"]
            )
            out.append(f"  shipping {group['id']}: {group['state']} ({shipped})")
    return "\n".join(out) + "\n"


def _exchange_lines(state: dict[str, Any]) -> list[str]:
    lines = []
    figures = (state.get("refundPlan") or {}).get("exchange")
    if figures:
        lines.append(
            f"  exchange: returned {figures['returnedValue']}, replacement {figures['replacementValue']},"
            f" difference {figures['difference']}, owed by the shopper {figures['owedByShopper']}"
            f" ({figures['basis']})"
        )
    replacement = state.get("replacementOrder")
    if replacement:
        shipping = ", ".join(f"{g['id']} {g['state']}" for g in replacement["shippingGroups"])
        lines.append(
            f"  replacement order {replacement['id']}: {replacement['state'] or 'not stored yet'}"
            + (f" (shipping {shipping})" if shipping else "")
        )
    return lines


def _order_links(state: dict[str, Any]) -> list[str]:
    lines = []
    if state.get("exchangeOf"):
        link = state["exchangeOf"]
        lines.append(f"  replacement order of {link['orderId']} (exchange {link['returnId']})")
    lines += [
        f"  replacement order {link['orderId']} (exchange {link['returnId']})"
        for link in state.get("replacementOrders") or []
    ]
    return lines


def transitions(
    store: Application[UUID],
    since: datetime | None,
    until: datetime | None,
    progress: Progress | None = None,
    page_size: int = 10_000,
) -> Iterator[tuple[Any, ...]]:
    """Every transition in notification order, within [since, until]."""
    total = int(store.recorder.max_notification_id() or 0)
    folded: dict[UUID, Aggregate] = {}
    position = done = 0
    while True:
        page = read_page(store, position, page_size)
        if not page:
            break
        for notification_id, event in page:
            aggregate = event.mutate(folded.get(event.originator_id))  # type: ignore[attr-defined]
            folded[event.originator_id] = aggregate
            if (since is None or event.timestamp >= since) and (until is None or event.timestamp <= until):
                yield transition_row(notification_id, event, aggregate)
        position = page[-1][0]
        done += len(page)
        if progress:
            progress(done, total)


def export(rows: Iterator[tuple[Any, ...]], fmt: str, out: TextIO) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TRANSITION_COLUMNS)
        for row in rows:
            writer.writerow(row)
            count += 1
        return count
    for row in rows:
        out.write(
            orjson.dumps(
                dict(zip(TRANSITION_COLUMNS, row, strict=True)), option=orjson.OPT_SORT_KEYS
            ).decode()
            + "\n"
        )
        count += 1
    return count
