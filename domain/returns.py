"""The return request aggregate: a Commerce return or exchange and its item lifecycles.

Commerce reports states; the machines decide whether the reported change is a
legal transition. A legal change is one event listing every item step it made,
so "one webhook, one recorded change" holds and the audit shows why.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identity import return_uuid
from domain.machines import IllegalTransition, allowed_triggers, fire, triggers_to

Item = dict[str, Any]


def receipt_facts(items: list[Item]) -> dict[str, bool]:
    """Guard facts for the return machine, read off the item list."""
    to_ship = [i for i in items if i.get("state") != "RETURN_NOT_REQUIRED"]
    all_received = bool(to_ship) and all(i["quantityReceived"] >= i["quantityToReturn"] for i in to_ship)
    return {
        "all_received": all_received,
        "some_received": any(i["quantityReceived"] > 0 for i in to_ship),
        "nothing_to_ship": not to_ship,
    }


class ReturnRequest(Aggregate):
    """A return (or exchange) request, keyed by Commerce's authorization number."""

    @classmethod
    def create_id(cls, commerce_id: str) -> UUID:
        return return_uuid(commerce_id)

    @event("Received")
    def __init__(
        self,
        commerce_id: str,
        order_id: str,
        process_name: str,
        items: list[Item],
        refund: dict[str, Any],
        details: dict[str, Any],
        version_key: int,
        fingerprint: str,
        trigger: str,
        source: str | None,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.commerce_id = commerce_id
        self.order_id = order_id
        self.process_name = process_name
        self.items = items
        self.refund = refund
        self.details = details
        self.version_key = version_key
        self.fingerprint = fingerprint
        self.fingerprints: list[str] = [fingerprint]
        self.state = target
        self.refund_plan: dict[str, Any] | None = None
        self.credited: dict[str, str] = {}
        self.manual_reason: str | None = None
        self.close_reason: str | None = None

    @classmethod
    def receive_request(
        cls,
        snapshot: dict[str, Any],
        *,
        version_key: int,
        fingerprint: str,
        actor: str,
        cause: str,
    ) -> ReturnRequest:
        return cls(
            commerce_id=snapshot["id"],
            order_id=snapshot["orderId"],
            process_name=snapshot["processName"],
            items=snapshot["returnItemList"],
            refund=snapshot["refund"],
            details=snapshot["details"],
            version_key=version_key,
            fingerprint=fingerprint,
            trigger="request",
            source=None,
            target=snapshot["state"],
            actor=actor,
            cause=cause,
        )

    def item(self, return_item_id: str) -> Item | None:
        return next((i for i in self.items if i["returnItemId"] == return_item_id), None)

    def apply_commerce_update(
        self,
        snapshot: dict[str, Any],
        *,
        version_key: int,
        fingerprint: str,
        actor: str,
        cause: str,
    ) -> str:
        """Apply a Return Request Update; answer `updated`, `overridden`, `duplicate` or `stale`.

        A body applied once before (same fingerprint) is Commerce redelivering it, whatever
        arrived between (SPEC section 8): returns carry no modification time to order them by.

        Commerce's word stands: a state the machines would not reach from ours (an
        agent's edit, a late update that would undo receipt) is recorded as a
        Commerce override with the reason, never refused (a refused event webhook
        is retried five times and then lost).
        """
        if fingerprint in self.fingerprints:
            return "duplicate"
        if version_key < self.version_key:
            return "stale"
        new_items: list[Item] = snapshot["returnItemList"]
        source, target = self.state, snapshot["state"]
        facts = {
            "items": new_items,
            "refund": snapshot["refund"],
            "details": snapshot["details"],
            "version_key": max(version_key, self.version_key),
            "fingerprint": fingerprint,
            "source": source,
            "target": target,
            "actor": actor,
            "cause": cause,
        }
        try:
            item_steps = [s for s in (self._item_step(new) for new in new_items) if s is not None]
            trigger = self._reported_trigger(source, target, new_items)
        except DomainError as exc:
            self._commerce_overridden(trigger="commerce_override", reason=_override_reason(exc), **facts)
            return "overridden"
        self._commerce_updated(item_steps=item_steps, trigger=trigger, **facts)
        return "updated"

    @staticmethod
    def _reported_trigger(source: str, target: str, items: list[Item]) -> str:
        """The trigger whose transition reaches the reported state (IllegalTransition if none)."""
        if source == target:
            return "commerce_update"
        candidates = triggers_to("return", source, target)
        if not candidates:
            raise IllegalTransition("return", f"to {target}", source, [])
        step = fire("return", source, candidates[0], **_update_facts(items))
        if step.target != target:
            raise IllegalTransition("return", f"{step.trigger} to {target}", source, [step.trigger])
        return step.trigger

    def commerce_changed_state(self, state: str, *, ours: str | None, actor: str, cause: str) -> bool:
        """Commerce holds a state someone else set (seen on the GET before our PUT, SPEC
        section 8): recorded as theirs, our change (`ours`, not sent) reported with it."""
        if state == self.state:
            return False
        self._commerce_overridden(
            items=self.items,
            refund=self.refund,
            details=self.details,
            version_key=self.version_key,
            fingerprint=self.fingerprint,
            trigger="commerce_override",
            source=self.state,
            target=state,
            reason=f"Commerce holds {state}, set by someone else; Returnflow's change to {ours} was"
            " not sent (drift for a person to decide)",
            actor=actor,
            cause=cause,
        )
        return True

    @event("CommerceOverridden")
    def _commerce_overridden(
        self,
        items: list[Item],
        refund: dict[str, Any],
        details: dict[str, Any],
        version_key: int,
        fingerprint: str,
        trigger: str,
        source: str,
        target: str,
        reason: str,
        actor: str,
        cause: str,
    ) -> None:
        self._take_commerce_snapshot(items, refund, details, version_key, fingerprint, target)

    def _take_commerce_snapshot(
        self,
        items: list[Item],
        refund: dict[str, Any],
        details: dict[str, Any],
        version_key: int,
        fingerprint: str,
        target: str,
    ) -> None:
        """What a Return Request Update sets, legal change or override alike; the RMA, tracking
        number and label Returnflow recorded stay while Commerce's snapshot has none."""
        self.items = items
        self.refund = refund
        self.details = {
            **details,
            **{k: v for k, v in self.details.items() if k in _OURS and v and not details.get(k)},
        }
        self.version_key = version_key
        self.fingerprint = fingerprint
        if fingerprint not in self.fingerprints:
            self.fingerprints = [*self.fingerprints, fingerprint]
        self.state = target

    def _item_step(self, new: Item) -> dict[str, Any] | None:
        old = self.item(new["returnItemId"])
        if old is None:
            return {
                "returnItemId": new["returnItemId"],
                "trigger": "add",
                "from": None,
                "to": new["state"],
                "quantityReceived": new["quantityReceived"],
            }
        if new["quantityReceived"] < old["quantityReceived"]:
            raise DomainError(
                f"return item {new['returnItemId']}: quantity received cannot go down"
                f" ({old['quantityReceived']} -> {new['quantityReceived']})",
                code="ILLEGAL_TRANSITION",
            )
        if old["state"] == new["state"]:
            return None
        candidates = triggers_to("return_item", old["state"], new["state"])
        if not candidates:
            raise IllegalTransition("return_item", f"to {new['state']}", old["state"], [])
        step = fire(
            "return_item",
            old["state"],
            candidates[0],
            shipment_required=new.get("returnShipmentRequired", True),
            fully_received=new["quantityReceived"] >= new["quantityToReturn"],
        )
        if step.target != new["state"]:
            raise IllegalTransition(
                "return_item", f"{step.trigger} to {new['state']}", old["state"], [step.trigger]
            )
        return {
            "returnItemId": new["returnItemId"],
            "trigger": step.trigger,
            "from": step.source,
            "to": step.target,
            "quantityReceived": new["quantityReceived"],
        }

    @event("CommerceUpdated")
    def _commerce_updated(
        self,
        items: list[Item],
        refund: dict[str, Any],
        details: dict[str, Any],
        item_steps: list[dict[str, Any]],
        version_key: int,
        fingerprint: str,
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self._take_commerce_snapshot(items, refund, details, version_key, fingerprint, target)

    # Operator actions (SPEC section 7). Each validates everything, then records one event.

    def find_item(self, ref: dict[str, Any]) -> Item:
        """An item named by `returnItemId` or `commerceItemId`."""
        rid, cid = ref.get("returnItemId"), ref.get("commerceItemId")
        for item in self.items:
            if (rid is not None and item["returnItemId"] == rid) or (
                rid is None and item["commerceItemId"] == cid
            ):
                return item
        raise DomainError(f"return {self.commerce_id} has no item {rid or cid}", code="NOT_FOUND")

    def _refuse_when_final(self, trigger: str) -> None:
        if self.state in ("COMPLETE", "INCOMPLETE"):
            raise IllegalTransition("return", trigger, self.state, allowed_triggers("return", self.state))

    def authorize(
        self,
        *,
        rma: str | None,
        tracking_number: str | None,
        return_label: str | None,
        shipment_required: dict[str, bool] | None,
        actor: str,
        cause: str,
    ) -> None:
        """Approve items (INITIAL -> AWAITING_RETURN / RETURN_NOT_REQUIRED) and issue the RMA."""
        self._refuse_when_final("authorize")
        items = [dict(i) for i in self.items]
        by_id = {i["returnItemId"]: i for i in items}
        if shipment_required is None:
            chosen = {i["returnItemId"]: True for i in items if i["state"] == "INITIAL"}
        else:
            chosen = shipment_required
        steps = []
        for return_item_id, required in chosen.items():
            item = by_id[return_item_id]
            step = fire("return_item", item["state"], "approve", shipment_required=required)
            item.update(state=step.target, returnShipmentRequired=required)
            steps.append(
                {
                    "returnItemId": return_item_id,
                    "trigger": step.trigger,
                    "from": step.source,
                    "to": step.target,
                    "shipmentRequired": required,
                }
            )
        details = dict(self.details)
        for key, value in (("rma", rma), ("trackingNumber", tracking_number), ("returnLabel", return_label)):
            if value is not None:
                details[key] = value
        if not steps and details == self.details:
            raise IllegalTransition("return_item", "approve", "no item in INITIAL", [])
        self._authorized(
            items=items,
            details=details,
            item_steps=steps,
            trigger="authorize",
            source=self.state,
            target=self.state,
            actor=actor,
            cause=cause,
        )

    @event("Authorized")
    def _authorized(
        self,
        items: list[Item],
        details: dict[str, Any],
        item_steps: list[dict[str, Any]],
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.items = items
        self.details = details

    def receive(self, quantities: list[tuple[dict[str, Any], int]], *, actor: str, cause: str) -> None:
        """Goods arrived: quantities add to what was received before."""
        self._refuse_when_final("receive")
        items = [dict(i) for i in self.items]
        by_id = {i["returnItemId"]: i for i in items}
        steps = []
        received: dict[str, int] = {}
        for ref, quantity in quantities:
            item = by_id[self.find_item(ref)["returnItemId"]]
            if quantity <= 0:
                raise DomainError("received quantity must be positive", code="INVALID_QUANTITY")
            total = item["quantityReceived"] + quantity
            if total > item["quantityToReturn"]:
                raise DomainError(
                    f"item {item['returnItemId']}: receiving {quantity} would make "
                    f"{total} of {item['quantityToReturn']} expected",
                    code="INVALID_QUANTITY",
                )
            step = fire(
                "return_item", item["state"], "receive", fully_received=total >= item["quantityToReturn"]
            )
            item.update(state=step.target, quantityReceived=total)
            received[item["returnItemId"]] = received.get(item["returnItemId"], 0) + quantity
            steps.append(
                {
                    "returnItemId": item["returnItemId"],
                    "trigger": step.trigger,
                    "from": step.source,
                    "to": step.target,
                    "quantity": quantity,
                    "quantityReceived": total,
                }
            )
        step = fire("return", self.state, "receive", **receipt_facts(items))
        self._received(
            items=items,
            item_steps=steps,
            quantities=received,
            trigger=step.trigger,
            source=step.source,
            target=step.target,
            actor=actor,
            cause=cause,
        )

    @event("ItemsReceived")
    def _received(
        self,
        items: list[Item],
        item_steps: list[dict[str, Any]],
        quantities: dict[str, int],
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.items = items
        self.state = target

    def initiate_refund(self, plan: dict[str, Any], *, actor: str, cause: str) -> None:
        facts = {**receipt_facts(self.items), "refund_known": bool(plan.get("payments") is not None)}
        step = fire("return", self.state, "initiate_refund", **facts)
        self._refund_step(
            plan=plan,
            reason=None,
            trigger=step.trigger,
            source=step.source,
            target=step.target,
            actor=actor,
            cause=cause,
        )

    def require_manual_refund(
        self, plan: dict[str, Any] | None, reason: str, *, actor: str, cause: str
    ) -> None:
        step = fire("return", self.state, "require_manual_refund")
        self._refund_step(
            plan=plan or self.refund_plan,
            reason=reason,
            trigger=step.trigger,
            source=step.source,
            target=step.target,
            actor=actor,
            cause=cause,
        )

    @event("RefundStep")
    def _refund_step(
        self,
        plan: dict[str, Any] | None,
        reason: str | None,
        trigger: str,
        source: str,
        target: str,
        actor: str,
        cause: str,
    ) -> None:
        self.refund_plan = plan
        self.state = target
        if reason is not None:
            self.manual_reason = reason

    def settle_refund(self, *, actor: str, cause: str) -> dict[str, str]:
        """The refund is recorded as paid; answers what was credited per payment group."""
        plan = self.refund_plan
        step = fire("return", self.state, "settle_refund", refund_recorded=plan is not None)
        credited = dict((plan or {}).get("payments") or {})
        self._settled(
            credited=credited,
            trigger=step.trigger,
            source=step.source,
            target=step.target,
            actor=actor,
            cause=cause,
        )
        return credited

    @event("RefundSettled")
    def _settled(
        self, credited: dict[str, str], trigger: str, source: str, target: str, actor: str, cause: str
    ) -> None:
        self.credited = credited
        self.state = target

    def complete_exchange(self, plan: dict[str, Any], reason: str, *, actor: str, after: str) -> None:
        """An exchange that credits nothing completes by itself once its goods are all in; the
        transition's cause says why no refund is owed, `after` names what brought the goods in."""
        step = fire("return", self.state, "complete_exchange", nothing_owed=Decimal(plan["total"]) == 0)
        self._exchange_completed(
            plan=plan,
            after=after,
            trigger=step.trigger,
            source=step.source,
            target=step.target,
            actor=actor,
            cause=reason,
        )

    @event("ExchangeCompleted")
    def _exchange_completed(
        self, plan: dict[str, Any], after: str, trigger: str, source: str, target: str, actor: str, cause: str
    ) -> None:
        self.refund_plan = plan
        self.state = target

    def close(self, reason: str, *, actor: str, cause: str) -> None:
        step = fire("return", self.state, "close_incomplete")
        self._closed(
            reason=reason,
            trigger=step.trigger,
            source=step.source,
            target=step.target,
            actor=actor,
            cause=cause,
        )

    @event("Closed")
    def _closed(self, reason: str, trigger: str, source: str, target: str, actor: str, cause: str) -> None:
        self.close_reason = reason
        self.state = target


_OURS = frozenset({"rma", "trackingNumber", "returnLabel"})
"""Details an operator's authorize sets: an update that does not mention them keeps them."""


def _override_reason(exc: DomainError) -> str:
    return f"Commerce reported a change Returnflow's machines would not make: {exc}"


def _update_facts(items: list[Item]) -> dict[str, bool]:
    """Commerce only reports a refund state once it knows and has recorded the refund."""
    return {**receipt_facts(items), "refund_known": True, "refund_recorded": True}
