"""Return Request Validation, judged in the domain: every context x every eligibility case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.machines import IllegalTransition
from domain.orders import Order
from domain.policy import NonReturnableReason, ReturnPolicy
from domain.returns import ReturnRequest
from domain.validation import SUBMIT_CONTEXTS, AskedItem, judge

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
POLICY = ReturnPolicy(nonreturnable_skus=frozenset({"sku-final"}))
CONTEXTS = [
    "Initiate_Return",
    "CalculateRefund_Return",
    "Submit_Return",
    "Custom_Return",
    "Initiate_Exchange",
    "Submit_Exchange",
    "Process_Exchange",
]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def make_order(shipped_days_ago: int | None = 5) -> Order:
    snapshot: dict[str, Any] = {
        "id": "o1",
        "state": "SUBMITTED",
        "currency": "USD",
        "submittedDate": iso(NOW - timedelta(days=(shipped_days_ago or 0) + 2)),
        "priceInfo": {
            "total": "170.00",
            "amount": "160.00",
            "shipping": "10.00",
            "tax": "0.00",
            "discountAmount": "0.00",
        },
        "commerceItems": [
            {
                "id": "ci-a",
                "catalogRefId": "sku-a",
                "productId": "p-a",
                "quantity": 2,
                "returnedQuantity": 0,
                "amount": "100.00",
                "tax": "0.00",
                "orderDiscountShare": "0.00",
            },
            {
                "id": "ci-final",
                "catalogRefId": "sku-final",
                "productId": "p-f",
                "quantity": 1,
                "returnedQuantity": 0,
                "amount": "30.00",
                "tax": "0.00",
                "orderDiscountShare": "0.00",
            },
            {
                "id": "ci-c",
                "catalogRefId": "sku-c",
                "productId": "p-c",
                "quantity": 3,
                "returnedQuantity": 0,
                "amount": "30.00",
                "tax": "0.00",
                "orderDiscountShare": "0.00",
            },
        ],
        "shippingGroups": [
            {
                "id": "sg1",
                "state": "INITIAL",
                "amount": "10.00",
                "shippingTax": "0.00",
                "items": [
                    {"commerceItemId": c, "quantity": q, "returnedQuantity": 0}
                    for c, q in (("ci-a", 2), ("ci-final", 1), ("ci-c", 3))
                ],
            }
        ],
        "paymentGroups": [
            {
                "id": "pg1",
                "paymentMethod": "creditCard",
                "amount": "170.00",
                "amountCredited": "0.00",
                "currencyCode": "USD",
                "state": None,
            }
        ],
    }
    order = Order.submit(
        snapshot, last_modified=1, fingerprint="f", origin="order-submit", actor="commerce-webhook", cause="c"
    )
    if shipped_days_ago is not None:
        order.ship(
            shipping_group_id="sg1",
            items=None,
            tracking_number="T",
            ship_date=iso(NOW - timedelta(days=shipped_days_ago)),
            actor="operator:w",
            cause="c",
        )
    return order


def make_return(
    rid: str, item: str, to_return: int, received: int, state: str, process: str = "Return"
) -> ReturnRequest:
    item_state = (
        "RETURNED" if received >= to_return else ("PARTIAL_RETURN" if received else "AWAITING_RETURN")
    )
    return ReturnRequest.receive_request(
        {
            "id": rid,
            "orderId": "o1",
            "processName": process,
            "state": state,
            "returnItemList": [
                {
                    "returnItemId": f"{rid}-1",
                    "commerceItemId": item,
                    "state": item_state,
                    "quantityToReturn": to_return,
                    "quantityReceived": received,
                    "returnShipmentRequired": True,
                }
            ],
            "refund": {},
            "details": {},
        },
        version_key=1,
        fingerprint=rid,
        actor="commerce-webhook",
        cause="c",
    )


# scenario -> (order, returns, asked item, asked quantity, expected reason, expected available)
def scenario(name: str) -> tuple[Order, list[ReturnRequest], str, int, NonReturnableReason | None, int]:
    if name == "eligible":
        return make_order(), [], "ci-a", 1, None, 2
    if name == "window_expired":
        return make_order(shipped_days_ago=45), [], "ci-a", 1, NonReturnableReason.RETURN_WINDOW_EXPIRED, 0
    if name == "final_sale":
        return make_order(), [], "ci-final", 1, NonReturnableReason.FINAL_SALE, 0
    if name == "already_returned":
        return (
            make_order(),
            [make_return("r0", "ci-a", 2, 2, "COMPLETE")],
            "ci-a",
            1,
            NonReturnableReason.ALREADY_RETURNED,
            0,
        )
    if name == "partially_returned":
        return make_order(), [make_return("r0", "ci-c", 1, 1, "COMPLETE")], "ci-c", 2, None, 2
    if name == "in_open_return":
        return (
            make_order(),
            [make_return("r0", "ci-c", 2, 0, "PENDING_CUSTOMER_ACTION")],
            "ci-c",
            1,
            None,
            1,
        )
    if name == "unshipped":
        return make_order(shipped_days_ago=None), [], "ci-a", 1, NonReturnableReason.UNFULFILLED, 0
    if name == "unknown_item":
        return make_order(), [], "ci-nope", 1, NonReturnableReason.NOT_FOUND, 0
    if name == "over_asked":
        return make_order(), [], "ci-a", 3, None, 2
    raise AssertionError(name)


SCENARIOS = [
    "eligible",
    "window_expired",
    "final_sale",
    "already_returned",
    "partially_returned",
    "in_open_return",
    "unshipped",
    "unknown_item",
    "over_asked",
]


@pytest.mark.parametrize("name", SCENARIOS)
@pytest.mark.parametrize("context", CONTEXTS)
def test_every_context_by_every_case(context: str, name: str) -> None:
    order, returns, item, quantity, reason, available = scenario(name)
    verdict = judge(context, "o1", order, returns, [AskedItem(item, "sg1", quantity)], POLICY, NOW)
    (answer,) = verdict.items
    assert answer.verdict.reason == reason
    assert answer.verdict.returnable is (reason is None)
    assert answer.verdict.quantity_available == available
    refused = context in SUBMIT_CONTEXTS and (reason is not None or quantity > available)
    assert (verdict.refusal is not None) is refused
    if refused:
        assert verdict.nonreturnable
        assert item in (verdict.refusal or "")
    if context == "CalculateRefund_Return" and not refused:
        assert verdict.refund is not None
        assert verdict.refund.items[0].quantity == quantity


@pytest.mark.parametrize("context", CONTEXTS)
def test_truncated_list_is_answered_from_the_stored_order(context: str) -> None:
    verdict = judge(context, "o1", make_order(), [], None, POLICY, NOW)
    by_item = {a.commerce_item_id: a.verdict for a in verdict.items}
    assert set(by_item) == {"ci-a", "ci-final", "ci-c"}
    assert by_item["ci-final"].reason == NonReturnableReason.FINAL_SALE
    assert by_item["ci-a"].quantity_available == 2
    assert verdict.refusal is None


@pytest.mark.parametrize("context", CONTEXTS)
def test_unknown_order_is_not_found_not_a_crash(context: str) -> None:
    verdict = judge(context, "o404", None, [], [AskedItem("ci-a", None, 1)], POLICY, NOW)
    assert verdict.nonreturnable
    assert verdict.reason[0] == NonReturnableReason.NOT_FOUND
    assert verdict.items[0].verdict.reason == NonReturnableReason.NOT_FOUND


def test_exchange_window_is_separate_from_return_window() -> None:
    policy = ReturnPolicy(return_window_days=30, exchange_window_days=60)
    order = make_order(shipped_days_ago=45)
    asked = [AskedItem("ci-a", "sg1", 1)]
    assert judge("Initiate_Return", "o1", order, [], asked, policy, NOW).nonreturnable
    assert not judge("Initiate_Exchange", "o1", order, [], asked, policy, NOW).nonreturnable


@pytest.mark.parametrize(("received", "allowed"), [(0, False), (1, False), (2, True)])
def test_process_exchange_only_after_the_goods_are_received(received: int, allowed: bool) -> None:
    order = make_order()
    exchange = make_return("x1", "ci-a", 2, received, "PENDING_CUSTOMER_ACTION", process="Exchange")
    asked = [AskedItem("ci-a", "sg1", 0)]
    for context in ("Initiate_Exchange", "Submit_Exchange"):
        verdict = judge(context, "o1", order, [exchange], asked, POLICY, NOW)
        assert order.record_validation(
            context=context,
            facts=verdict.lifecycle_facts,
            answer={},
            answer_fingerprint=context,
            refund_quote=None,
            actor="commerce-webhook",
            cause="c",
        )
    verdict = judge("Process_Exchange", "o1", order, [exchange], asked, POLICY, NOW, "x1")
    assert verdict.lifecycle_facts == {"goods_received": allowed}
    before = len(order.pending_events)
    if allowed:
        assert order.record_validation(
            context="Process_Exchange",
            facts=verdict.lifecycle_facts,
            answer={},
            answer_fingerprint="p",
            refund_quote=None,
            actor="commerce-webhook",
            cause="c",
        )
        assert order.lifecycle_state == "EXCHANGE_PROCESSED"
    else:
        with pytest.raises(IllegalTransition):
            order.record_validation(
                context="Process_Exchange",
                facts=verdict.lifecycle_facts,
                answer={},
                answer_fingerprint="p",
                refund_quote=None,
                actor="commerce-webhook",
                cause="c",
            )
        assert len(order.pending_events) == before
        assert order.lifecycle_state == "EXCHANGE_SUBMITTED"


def test_same_question_same_answer_records_nothing_new() -> None:
    order = make_order()
    kwargs: dict[str, Any] = {
        "facts": {},
        "answer": {},
        "refund_quote": None,
        "actor": "commerce-webhook",
        "cause": "c",
    }
    assert order.record_validation(context="Initiate_Return", answer_fingerprint="a", **kwargs)
    assert not order.record_validation(context="Initiate_Return", answer_fingerprint="a", **kwargs)
    assert order.record_validation(context="Initiate_Return", answer_fingerprint="b", **kwargs)


def test_submit_return_before_refund_calculation_is_refused() -> None:
    order = make_order()
    with pytest.raises(IllegalTransition):
        order.record_validation(
            context="Submit_Return",
            facts={},
            answer={},
            answer_fingerprint="s",
            refund_quote=None,
            actor="commerce-webhook",
            cause="c",
        )


def test_calculate_refund_on_the_seed_style_order() -> None:
    """Returning 1 of 2 discounted jackets: half the line's net, no shipping yet."""
    order = make_order()
    verdict = judge(
        "CalculateRefund_Return", "o1", order, [], [AskedItem("ci-a", "sg1", 1)], ReturnPolicy(), NOW
    )
    assert verdict.refund is not None
    assert verdict.refund.item_total == Decimal("50.00")
    assert verdict.refund.shipping_total == Decimal("0.00")
    assert verdict.refund.refund_total == Decimal("50.00")


ISSUING = replace(
    POLICY,
    issue_rma_on=frozenset({"Submit_Return", "Submit_Exchange"}),
    rma_prefix="RMA-",
    return_label_url="https://labels.test/{order_id}/{rma}",
)


def link(order: Order, ret: ReturnRequest) -> None:
    order.link_return(ret.commerce_id, actor="commerce-webhook", cause="c")


@pytest.mark.parametrize("context", CONTEXTS)
def test_rma_and_label_are_issued_only_where_the_policy_says(context: str) -> None:
    verdict = judge(context, "o1", make_order(), [], [AskedItem("ci-a", "sg1", 1)], ISSUING, NOW)
    if context in ("Submit_Return", "Submit_Exchange"):
        assert (verdict.rma, verdict.return_label) == ("RMA-o1-1", "https://labels.test/o1/RMA-o1-1")
    else:
        assert (verdict.rma, verdict.return_label) == (None, None)


def test_rma_counts_the_orders_returns_and_is_stable_between_questions() -> None:
    order = make_order()
    asked = [AskedItem("ci-c", "sg1", 1)]
    first = judge("Submit_Return", "o1", order, [], asked, ISSUING, NOW)
    again = judge("Submit_Return", "o1", order, [], asked, ISSUING, NOW + timedelta(hours=1))
    assert first.rma == again.rma == "RMA-o1-1"
    earlier = make_return("r0", "ci-c", 1, 1, "COMPLETE")
    link(order, earlier)
    assert judge("Submit_Return", "o1", order, [earlier], asked, ISSUING, NOW).rma == "RMA-o1-2"


def test_a_named_return_keeps_its_own_authorization() -> None:
    order = make_order()
    ret = make_return("r9", "ci-c", 1, 0, "PENDING_CUSTOMER_ACTION")
    link(order, ret)
    asked = [AskedItem("ci-c", "sg1", 1)]
    named = judge("Submit_Return", "o1", order, [ret], asked, ISSUING, NOW, return_id="r9")
    assert named.rma == "RMA-r9"
    ret.authorize(
        rma="WH-77",
        tracking_number=None,
        return_label=None,
        shipment_required=None,
        actor="operator:w",
        cause="c",
    )
    authorized = judge("Submit_Return", "o1", order, [ret], asked, ISSUING, NOW, return_id="r9")
    assert (authorized.rma, authorized.return_label) == ("WH-77", "https://labels.test/o1/WH-77")
    held = judge("Submit_Return", "o1", order, [ret], asked, ISSUING, NOW, return_id="r9", rma="AGENT-1")
    assert held.rma == "AGENT-1", "what Commerce already holds wins"


@pytest.mark.parametrize(
    "context", ["Initiate_Return", "CalculateRefund_Return", "Submit_Return", "Custom_Return"]
)
def test_what_an_operator_authorized_is_repeated_whatever_the_policy_issues(context: str) -> None:
    order = make_order()
    ret = make_return("r9", "ci-c", 1, 0, "PENDING_CUSTOMER_ACTION")
    link(order, ret)
    asked = [AskedItem("ci-c", "sg1", 1)]
    before = judge(context, "o1", order, [ret], asked, POLICY, NOW, return_id="r9")
    assert (before.rma, before.tracking_number, before.return_label) == (None, None, None)
    ret.authorize(
        rma="WH-77",
        tracking_number="1Z999",
        return_label="https://carrier.test/l.pdf",
        shipment_required=None,
        actor="operator:w",
        cause="c",
    )
    after = judge(context, "o1", order, [ret], asked, POLICY, NOW, return_id="r9")
    assert (after.rma, after.tracking_number, after.return_label) == (
        "WH-77",
        "1Z999",
        "https://carrier.test/l.pdf",
    )
    other = judge(context, "o1", order, [ret], asked, POLICY, NOW, return_id="r10")
    assert (other.rma, other.tracking_number) == (None, None), "only about that return"


@pytest.mark.parametrize("name", ["window_expired", "final_sale", "unshipped", "over_asked", "unknown_item"])
def test_no_authorization_for_what_cannot_be_returned(name: str) -> None:
    order, returns, item, quantity, _, _ = scenario(name)
    verdict = judge("Submit_Return", "o1", order, returns, [AskedItem(item, "sg1", quantity)], ISSUING, NOW)
    assert verdict.nonreturnable and verdict.rma is None and verdict.return_label is None


def test_unknown_order_gets_no_authorization() -> None:
    verdict = judge("Submit_Return", "nope", None, [], [AskedItem("ci-a", "sg1", 1)], ISSUING, NOW)
    assert verdict.rma is None


def test_process_exchange_with_no_id_needs_exactly_one_exchange_with_its_goods_in() -> None:
    """Issue 22 item 3: two exchanges received, a question naming neither: which one is meant
    cannot be known, so neither is approved (main approved whichever was received)."""
    order = make_order()
    x1 = make_return("x1", "ci-c", 1, 1, "FULL_RETURN", process="Exchange")
    x2 = make_return("x2", "ci-c", 1, 1, "FULL_RETURN", process="Exchange")
    asked = [AskedItem("ci-c", "sg1", 1)]
    verdict = judge("Process_Exchange", "o1", order, [x1, x2], asked, POLICY, NOW)
    assert verdict.refusal == (
        "Order o1 has 2 exchanges with their goods received (x1, x2): name the one to fulfil"
    )
    assert verdict.lifecycle_facts.get("goods_received") is not True
    one = judge("Process_Exchange", "o1", order, [x1, x2], asked, POLICY, NOW, "x2")
    assert (one.refusal, one.lifecycle_facts, one.exchange_id) == (None, {"goods_received": True}, "x2")
    done = frozenset({"x1"})
    shipped = judge("Process_Exchange", "o1", order, [x1, x2], asked, POLICY, NOW, fulfilled=done)
    assert (shipped.refusal, shipped.exchange_id) == (None, "x2"), "x1's replacement has shipped: not open"


def test_process_exchange_naming_a_plain_return_is_refused() -> None:
    order = make_order()
    plain = make_return("r1", "ci-c", 1, 1, "FULL_RETURN")
    waiting = make_return("x1", "ci-c", 1, 0, "PENDING_CUSTOMER_ACTION", process="Exchange")
    asked = [AskedItem("ci-c", "sg1", 1)]
    verdict = judge("Process_Exchange", "o1", order, [plain, waiting], asked, POLICY, NOW, "r1")
    assert verdict.refusal == "r1 is a return (Return), not an exchange: nothing to fulfil"
    unnamed = judge("Process_Exchange", "o1", order, [plain, waiting], asked, POLICY, NOW)
    assert unnamed.refusal is None and unnamed.lifecycle_facts == {"goods_received": False}
