"""The Return Request Validation function webhook: Commerce waits for this answer.

A question is judged first from committed aggregates held in memory (on the
event loop; first dropping whatever another process sharing the store has
changed since, which costs a query only when its change notice moved), else on
a reader thread; only when the answer would be
recorded (a lifecycle step, or a different answer) does it go through the
writer, which judges again inside its unit of work and records one event per
order. A repeated question is answered without touching the writer at all, and
while nothing it was judged from has changed, from memory (`AnswerMemo`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import structlog
from aiohttp import web

from domain.identity import order_uuid, return_uuid
from domain.machines import CONTEXT_TRIGGERS, IllegalTransition
from domain.orders import Order
from domain.policy import ReturnPolicy, verdicts_hold_until
from domain.refunds import RefundCalculation
from domain.returns import ReturnRequest
from domain.states import COMMERCE_WEBHOOK_ACTOR, ValidationContext
from domain.validation import AskedItem, RequestVerdict, judge
from service.conform import conform
from service.context import SERVICES
from service.errors import BadRequest
from service.payloads import Json, JsonReader, body_hash, parse_json
from service.shapes import RETURN_REQUEST_VALIDATION
from service.unit_of_work import CacheMiss, Mode, UnitOfWork
from service.webhooks import refused_logged, signed_body
from service.writer import StoreContended

log = structlog.get_logger(__name__)
CONTEXTS = frozenset(c.value for c in ValidationContext)


@dataclass(frozen=True)
class Question:
    raw: Json
    order_id: str
    return_id: str | None
    asked: tuple[AskedItem, ...] | None
    rma: str | None = None


@dataclass(frozen=True)
class ValidationCall:
    context: str
    questions: tuple[Question, ...]


def parse_validation(document: Json) -> ValidationCall:
    conform(RETURN_REQUEST_VALIDATION, document)  # every problem at once; the answer mirrors the raw
    root = JsonReader(document, "$")
    context = root.text("context")
    if context is None:
        raise BadRequest("$.context is required", path="$.context")
    if context not in CONTEXTS:
        raise BadRequest(
            f"unknown context {context!r}; expected one of {', '.join(sorted(CONTEXTS))}",
            path="$.context",
            code="UNKNOWN_CONTEXT",
        )
    requests = root.objects("returnRequests", required=True)
    if not requests:
        raise BadRequest("$.returnRequests must not be empty", path="$.returnRequests")
    fallback_order = root.opt_ident("orderId")
    questions = []
    for request in requests:
        order_id = request.opt_ident("orderId") or fallback_order
        if order_id is None:
            raise BadRequest(f"{request.path}.orderId is required", path=f"{request.path}.orderId")
        truncated = request.boolean("returnItemListIsTruncated", False)
        asked = None
        if not truncated:
            asked = tuple(
                AskedItem(
                    commerce_item_id=item.ident("commerceItemId"),
                    shipping_group_id=item.opt_ident("shippingGroupId"),
                    quantity=_quantity(item, context),
                )
                for item in request.objects("returnItemList", required=True)
            )
        return_id = request.opt_ident("authorizationNumber", "requestId", "id")
        questions.append(
            Question(request.data, order_id, return_id, asked, _held_rma(request.data.get("rma")))
        )
    return ValidationCall(context, tuple(questions))


def _held_rma(value: object) -> str | None:
    """Commerce's echo of an authorization number; lenient, since it is ours or an agent's."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value).strip() or None


def _quantity(item: JsonReader, context: str) -> int:
    key = "quantityToExchange" if context.endswith("_Exchange") else "quantityToReturn"
    quantity = item.integer(key) or item.integer("quantityToReturn")
    if quantity < 0:
        raise BadRequest(f"{item.path}.{key} must not be negative", path=f"{item.path}.{key}")
    return quantity


def _returns_of(uow: UnitOfWork, order: Order | None) -> list[ReturnRequest]:
    if order is None:
        return []
    found = (uow.get(return_uuid(rid), ReturnRequest) for rid in order.return_ids)
    return [r for r in found if r is not None]


def strings_only(values: Any) -> dict[str, str]:
    """`additionalProperties` as Commerce's answer holds them: a flat map of strings (seed
    oms-integration-overview.txt validation response); nulls are left out."""
    if not isinstance(values, dict):
        return {}
    return {str(k): _text(v) for k, v in values.items() if v is not None}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, default=str).decode()


def _refund_properties(refund: RefundCalculation) -> dict[str, str]:
    """The refund a CalculateRefund_Return answer reports, flat (the full calculation is kept on
    the order's lifecycle event)."""
    return {
        "refundTotal": str(refund.refund_total),
        "refundCurrency": refund.currency,
        "itemRefund": str(refund.item_total),
        "taxRefund": str(refund.tax_total),
        "shippingRefund": str(refund.shipping_total - refund.shipping_tax_total),
        "shippingTaxRefund": str(refund.shipping_tax_total),
        "shippingSurchargeRefund": str(refund.surcharge_total),
        "returnFee": str(refund.fee),
        "refundPayments": ",".join(f"{p.payment_group_id}:{p.amount}" for p in refund.payments),
        "refundRequiresManual": "true" if refund.requires_manual else "false",
    }


def _fulfilled(uow: UnitOfWork, returns: Sequence[ReturnRequest]) -> frozenset[str]:
    """Exchanges whose replacement order has shipped in full: no longer open to Process_Exchange."""
    done = set()
    for ret in returns:
        replacement_id = ret.details.get("replacementOrderId")
        replacement = uow.get(order_uuid(replacement_id), Order) if replacement_id else None
        if replacement is not None and all(
            replacement.shipped_quantity(g, link) >= link["quantity"]
            for g in replacement.snapshot["shippingGroups"]
            for link in g["items"]
        ):
            done.add(ret.commerce_id)
    return frozenset(done)


def answer_item(raw: Json | None, verdict_item: Any) -> Json:
    verdict = verdict_item.verdict
    base = (
        dict(raw)
        if raw
        else {
            "commerceItemId": verdict_item.commerce_item_id,
            "shippingGroupId": verdict_item.shipping_group_id,
        }
    )
    base.update(
        nonreturnable=verdict.nonreturnable,
        nonReturnableReason=None if verdict.returnable else verdict.text,
        quantityAvailable=verdict.quantity_available,
        additionalProperties=strings_only(
            {
                **strings_only(base.get("additionalProperties")),
                "reasonCode": verdict.reason.value if verdict.reason else None,
                "explanation": verdict.text,
            }
        ),
    )
    return base


def answer_request(question: Question, verdict: RequestVerdict, refusal: Json | None) -> Json:
    raw_items = question.raw.get("returnItemList") if question.asked is not None else None
    items = [
        answer_item(raw_items[i] if isinstance(raw_items, list) else None, item)
        for i, item in enumerate(verdict.items)
    ]
    refund = verdict.refund
    if refund is not None:
        by_item = {i.commerce_item_id: i for i in refund.items}
        for item in items:
            share = by_item.get(item["commerceItemId"])
            if share is not None:
                item["additionalProperties"].update(
                    refundAmount=str(share.amount),
                    taxRefund=str(share.tax),
                    shippingRefund=str(share.shipping),
                    totalRefund=str(share.total),
                )
    code, text = verdict.reason
    extra: Json = strings_only(question.raw.get("additionalProperties"))
    if code is not None:
        extra["reasonCode"] = code.value
    if refund is not None:
        extra.update(_refund_properties(refund))
    if verdict.exchange_id is not None:
        extra["exchangeId"] = verdict.exchange_id
    if refusal is not None:
        extra.update(strings_only(refusal))
    nonreturnable = verdict.nonreturnable or refusal is not None
    answer = {
        **{k: v for k, v in question.raw.items() if k != "returnItemList"},
        "orderId": question.order_id,
        "returnItemList": items,
        "nonreturnable": nonreturnable,
        "nonReturnableReason": ((refusal or {}).get("message") or text) if nonreturnable else None,
        "rma": (verdict.rma if refusal is None else None) or question.raw.get("rma"),
        "trackingNumber": question.raw.get("trackingNumber")
        or (verdict.tracking_number if refusal is None else None),
        "returnLabel": question.raw.get("returnLabel") or (verdict.return_label if refusal is None else None),
        "additionalProperties": extra,
    }
    return answer


def fingerprint_of(answer: Json) -> str:
    return hashlib.sha256(orjson.dumps(answer, option=orjson.OPT_SORT_KEYS)).hexdigest()


def decide(
    uow: UnitOfWork,
    call: ValidationCall,
    policy: ReturnPolicy,
    now: datetime,
    cause: str,
    record: bool,
) -> tuple[list[Json], bool]:
    """Answer every request; with `record`, store one lifecycle event per order that moves.

    Answers `(answers, needs_recording)`. Requests the lifecycle refuses are
    answered as refusals and record nothing.
    """
    answers: list[Json] = []
    needs_recording = False
    for question in call.questions:
        order = uow.get(order_uuid(question.order_id), Order)
        returns = _returns_of(uow, order)
        fulfilled = _fulfilled(uow, returns) if call.context == "Process_Exchange" else frozenset()
        verdict = judge(
            call.context,
            question.order_id,
            order,
            returns,
            question.asked,
            policy,
            now,
            question.return_id,
            question.rma,
            fulfilled,
        )
        answer = answer_request(question, verdict, None)
        if order is None or verdict.refusal is not None:
            answers.append(answer)
            continue
        fingerprint = fingerprint_of(answer)
        try:
            if record:
                order.record_validation(
                    context=call.context,
                    facts=verdict.lifecycle_facts,
                    answer=_summary(call.context, answer, question.return_id),
                    answer_fingerprint=fingerprint,
                    refund_quote=verdict.refund.to_primitive() if verdict.refund else None,
                    actor=COMMERCE_WEBHOOK_ACTOR,
                    cause=cause,
                )
            elif order.would_record(call.context, fingerprint, verdict.lifecycle_facts):
                needs_recording = True
        except IllegalTransition as exc:
            answer = answer_request(
                question,
                verdict,
                {
                    "errorCode": "ILLEGAL_TRANSITION",
                    "message": f"{call.context} is not allowed now: the order's return lifecycle is "
                    f"{exc.state}"
                    + (
                        " and the returned goods have not been received"
                        if call.context == "Process_Exchange"
                        else ""
                    ),
                    "lifecycleState": exc.state,
                    "allowedContexts": ",".join(_contexts(exc.allowed)),
                },
            )
        answers.append(answer)
    return answers, needs_recording


def _summary(context: str, answer: Json, return_id: str | None = None) -> Json:
    """What the event keeps of an answer: the verdicts and amounts, not Commerce's echo."""
    return {
        "context": context,
        "nonreturnable": answer["nonreturnable"],
        "nonReturnableReason": answer["nonReturnableReason"],
        "items": [
            {k: item.get(k) for k in ("commerceItemId", "nonreturnable", "quantityAvailable")}
            | {
                "quantity": item.get("quantityToReturn"),
                "reasonCode": item["additionalProperties"].get("reasonCode"),
                "refundAmount": item["additionalProperties"].get("totalRefund"),
            }
            for item in answer["returnItemList"]
        ],
        "refundTotal": answer["additionalProperties"].get("refundTotal"),
        "rma": answer["rma"],
        "returnId": answer["additionalProperties"].get("exchangeId") or return_id,
        "trackingNumber": answer["trackingNumber"],
        "returnLabel": answer["returnLabel"],
    }


def _contexts(triggers: Sequence[str]) -> list[str]:
    names = {v: k for k, v in CONTEXT_TRIGGERS.items()}
    return sorted(names[t] for t in triggers if t in names)


async def return_request_validation(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await signed_body(request, services)
    cause = body_hash(body)
    services.writer.copies.refresh()
    remembered = services.answers.get(cause)
    if remembered is not None:
        services.counters[("validation_repeat", request.path)] += 1
        log.debug("validation_answered_again", cause=cause)
        return web.Response(body=remembered, content_type="application/json")
    call = refused_logged(request, cause, lambda: parse_validation(parse_json(body)))
    policy = services.policy
    now, clock = datetime.now(UTC), time.monotonic()
    cache = services.writer.committed
    uow = UnitOfWork(services.store, Mode.CACHED, cache=cache)
    try:
        answers, needs_recording = decide(uow, call, policy, now, cause, False)
    except CacheMiss:
        uow = UnitOfWork(services.store, Mode.READ_THROUGH, cache=cache)
        answers, needs_recording = await asyncio.to_thread(decide, uow, call, policy, now, cause, False)
    recorded = needs_recording
    if needs_recording:
        try:
            answers, _ = await services.write(
                partial(_decide_and_record, call=call, policy=policy, now=now, cause=cause)
            )
        except StoreContended:
            # Commerce waits on this answer and does not retry a function webhook: the verdict
            # judged a moment ago stands; only its lifecycle step goes unrecorded this time.
            services.counters[("validation_not_recorded", request.path)] += 1
            log.warning(
                "validation_step_not_recorded",
                context=call.context,
                cause=cause,
                reason="other writers kept changing the order",
            )
            recorded = False
    services.counters[("validation_" + call.context, request.path)] += 1
    (log.info if recorded else log.debug)(
        "validation_answered",
        context=call.context,
        cause=cause,
        recorded=recorded,
        orders=[q.order_id for q in call.questions],
        nonreturnable=[a["nonreturnable"] for a in answers],
    )
    answer = orjson.dumps({"context": call.context, "returnRequests": answers})
    if not needs_recording and not uow.missed:  # a step left unrecorded is not remembered
        holds_for = (verdicts_hold_until(now) - now).total_seconds()
        services.answers.put(
            cause, answer, tuple((a.id, a.version) for a in uow.touched()), holds_until=clock + holds_for
        )
    return web.Response(body=answer, content_type="application/json")


def _decide_and_record(
    uow: UnitOfWork, *, call: ValidationCall, policy: ReturnPolicy, now: datetime, cause: str
) -> tuple[list[Json], bool]:
    return decide(uow, call, policy, now, cause, True)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/return-request-validation", return_request_validation)
