"""The GET before every PUT (SPEC section 8): the I/O around `commerce_merge`.

Commerce gives no version to write against, so each PUT is built on the
resource as Commerce holds it just before: `GET /ccadmin/v1/returnRequests/{id}`
or `GET /ccadmin/v1/orders/{id}`. A Commerce without a reader (the log-only
default) gets the body built from our view alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from projections.commerce_bodies import UPDATE_ORDER, UPDATE_RETURN_REQUEST, CommerceCall
from projections.commerce_merge import (
    Merged,
    credit_onto_held,
    held_amount,
    op_onto_held,
    return_onto_held,
    shipment_onto_held,
)
from projections.credit_ledger import CreditLedger

log = structlog.get_logger(__name__)
CREDIT = f"{UPDATE_ORDER}:credit"
SHIPMENT = f"{UPDATE_ORDER}:shipment"


@dataclass
class Prepared:
    """What to send: `merged.body` (None: nothing), or `refused`, the GET's failed outcome."""

    merged: Merged
    refused: Any = None
    credit_order: str | None = None
    notes: list[str] = field(default_factory=list)


class ReadBeforeWrite:
    def __init__(self, commerce: Any, credits: CreditLedger) -> None:
        self.commerce = commerce
        self.credits = credits
        self.reads = 0

    async def prepare(
        self, call: CommerceCall, view: dict[str, Any], known_states: frozenset[str]
    ) -> Prepared:
        reader = getattr(
            self.commerce,
            "get_return_request" if call.endpoint == UPDATE_RETURN_REQUEST else "get_order",
            None,
        )
        if reader is None:
            return Prepared(Merged(call.body))
        held = await reader(call.subject)
        self.reads += 1
        if not getattr(held, "ok", False) or not isinstance(held.response, dict):
            return Prepared(Merged(None), refused=held)
        document: dict[str, Any] = held.response
        if call.endpoint == UPDATE_RETURN_REQUEST:
            if "op" in call.body:
                return Prepared(op_onto_held(call.body, view, document, known_states))
            return Prepared(return_onto_held(call.body, view, document, known_states))
        if call.operation == SHIPMENT:
            return Prepared(shipment_onto_held(call.body, document, known_states))
        return await self._credit(call, view, document)

    async def _credit(self, call: CommerceCall, view: dict[str, Any], held: dict[str, Any]) -> Prepared:
        currency = str(view.get("currency") or "USD")
        figures = {
            str(g["id"]): held_amount(g.get("amountCredited"), currency)
            for g in held.get("paymentGroups") or []
            if isinstance(g, dict) and g.get("id")
        }
        await asyncio.to_thread(self.credits.settle_open, call.subject, figures)
        owed = await asyncio.to_thread(
            self.credits.unapplied, call.subject, view.get("creditsByReturn") or {}
        )
        per_group: dict[str, Decimal] = {}
        for (_, group), amount in owed.items():
            per_group[group] = per_group.get(group, Decimal(0)) + amount
        merged = credit_onto_held(held, per_group, currency)
        if merged.body is None:
            return Prepared(merged)
        sent = {g["id"]: g["amountCredited"] for g in merged.body["paymentGroups"]}
        held_owed = {key: amount for key, amount in owed.items() if key[1] in sent}
        await asyncio.to_thread(self.credits.intend, call.subject, held_owed, sent)
        return Prepared(merged, credit_order=call.subject)

    async def answered(self, prepared: Prepared, ok: bool) -> None:
        """After the PUT's answer (not after a timeout: its fate is settled on the next GET)."""
        if prepared.credit_order is not None:
            await asyncio.to_thread(self.credits.confirm, prepared.credit_order, ok)
