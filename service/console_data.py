"""What the console's pages show, read from the event store and the Commerce call log.

Synchronous (the console runs it off the event loop), and built from the same
`projections.audit.timeline` the `returnflow audit` command prints, so the page and
the terminal never disagree about a return's story or its state at a version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import DomainEvent

from domain.identity import order_uuid
from domain.operator_actions import Allowed, allowed_actions
from domain.orders import Order
from domain.views import order_view
from projections.audit import NotFound, Timeline, parse_time, timeline
from projections.sync import SyncLedger
from service.diagrams import render
from service.store import EventStore

__all__ = ["NotFound", "Page", "answers_of", "return_page"]


@dataclass
class Diagram:
    label: str
    svg: str


@dataclass
class Page:
    line: Timeline
    latest: int
    versions: list[dict[str, Any]]
    diagrams: list[Diagram]
    answers: list[dict[str, Any]]
    allowed: list[Allowed] = field(default_factory=list)
    payment_groups: list[dict[str, Any]] = field(default_factory=list)
    """The order's payment groups: where a refund may go (the refund form can override amounts)."""

    @property
    def at_latest(self) -> bool:
        return self.line.version == self.latest


def _loads(text: str | None) -> Any:
    return orjson.loads(text) if text else None


def quantity_text(quantities: dict[str, Any] | None) -> list[str]:
    """Item steps and quantities as short lines ("100003 AWAITING_RETURN -> PARTIAL_RETURN, +1")."""
    lines = []
    for step in (quantities or {}).get("item_steps") or []:
        extra = f", +{step['quantity']} ({step['quantityReceived']} received)" if "quantity" in step else ""
        lines.append(f"{step['returnItemId']} {step.get('from')} -> {step.get('to')}{extra}")
    if not lines:
        for item in (quantities or {}).get("items") or []:
            lines.append(
                f"{item.get('returnItemId') or item.get('commerceItemId')}: "
                f"{item.get('quantityReceived', 0)} of {item.get('quantityToReturn')} received"
            )
    for key, value in ((quantities or {}).get("quantities") or {}).items():
        lines.append(f"{key}: {value}")
    return lines


def amount_text(amounts: dict[str, Any] | None) -> list[str]:
    """Refund plans, credits and quoted totals as short lines."""
    lines = []
    for key, value in (amounts or {}).items():
        if key == "plan" and isinstance(value, dict):
            payments = ", ".join(f"{k} {v}" for k, v in sorted((value.get("payments") or {}).items()))
            lines.append(
                f"refund {value.get('total')} {value.get('currency')}"
                + (f" to {payments}" if payments else "")
            )
        elif isinstance(value, dict):
            lines.append(f"{key}: " + ", ".join(f"{k} {v}" for k, v in sorted(value.items())))
        else:
            lines.append(f"{key}: {value}")
    return lines


def _taken(events: list[dict[str, Any]]) -> tuple[set[tuple[str, str]], dict[str, set[tuple[str, str]]]]:
    """Transitions the return and each of its items took, read off the events."""
    machine: set[tuple[str, str]] = set()
    items: dict[str, set[tuple[str, str]]] = {}
    for event in events:
        if event.get("from") and event.get("to"):
            machine.add((event["from"], event["to"]))
        for step in event.get("item_steps") or []:
            if step.get("from") and step.get("to"):
                items.setdefault(step["returnItemId"], set()).add((step["from"], step["to"]))
    return machine, items


def _diagrams(line: Timeline) -> list[Diagram]:
    machine, items = _taken(line.events)
    shown = [
        Diagram(
            f"Return {line.commerce_id}",
            render("return", line.state["state"], machine, f"return {line.commerce_id}"),
        )
    ]
    for item in line.state["returnItemList"]:
        rid = item["returnItemId"]
        shown.append(
            Diagram(
                f"Item {rid} ({item['commerceItemId']})",
                render("return_item", item["state"], items.get(rid, set()), f"return item {rid}"),
            )
        )
    return shown


def answers_of(store: EventStore, order_id: str | None, until: str | None) -> list[dict[str, Any]]:
    """The validation answers given about an order (up to a moment), as their events keep them
    (`service.validation._summary`: verdicts and amounts, not Commerce's echo)."""
    if not order_id:
        return []
    found = []
    for event in store.events.get(order_uuid(order_id)):
        if not isinstance(event, DomainEvent) or type(event).__qualname__ != "Order.ContextValidated":
            continue
        moment = event.timestamp.isoformat().replace("+00:00", "Z")
        if until is not None and parse_time(moment) > parse_time(until):
            continue
        fields = event.__dict__
        answer: dict[str, Any] = fields["answer"]
        verdicts = [
            {
                "commerceItemId": i.get("commerceItemId"),
                "nonreturnable": bool(i.get("nonreturnable")),
                "code": i.get("reasonCode") or "",
                "reason": answer.get("nonReturnableReason") if i.get("nonreturnable") else "",
                "available": i.get("quantityAvailable"),
                "refund": i.get("refundAmount"),
            }
            for i in answer.get("items") or []
        ]
        found.append(
            {
                "time": moment,
                "context": fields["context"],
                "actor": fields["actor"],
                "rma": answer.get("rma"),
                "refundTotal": answer.get("refundTotal"),
                "transition": f"{fields['source']} -> {fields['target']}",
                "items": verdicts,
            }
        )
    return found


def _payment_groups(store: EventStore, order_id: str | None) -> list[dict[str, Any]]:
    try:
        order: Any = store.repository.get(order_uuid(order_id or ""))
    except AggregateNotFoundError:
        return []
    return order_view(order)["paymentGroups"] if isinstance(order, Order) else []


def return_page(store: EventStore, ledger: SyncLedger | None, commerce_id: str, version: int | None) -> Page:
    """A return at `version` (None: now); NotFound if no such return (or version)."""
    calls = ledger.calls_for(commerce_id) if ledger is not None else []
    latest = timeline(store, commerce_id, calls=calls)
    if latest.kind != "return":
        raise NotFound(f"no return {commerce_id}")
    line = (
        latest
        if version is None or version >= latest.version
        else timeline(store, commerce_id, version=version, calls=calls)
    )
    for event, row in zip(line.events, line.rows, strict=True):
        event["quantityText"] = quantity_text(_loads(row[11]))
        event["amountText"] = amount_text(_loads(row[12]))
    versions = [
        {"version": e["version"], "time": e["time"], "type": e["type"].split(".")[-1], "to": e.get("to")}
        for e in latest.events
    ]
    allowed = allowed_actions(latest.state) if line.version == latest.version else []
    return Page(
        line,
        latest.version,
        versions,
        _diagrams(line),
        answers_of(store, line.state.get("orderId"), line.events[-1]["time"]),
        allowed,
        _payment_groups(store, line.state.get("orderId")) if allowed else [],
    )
