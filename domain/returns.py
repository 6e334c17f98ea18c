"""The return request aggregate: a Commerce return or exchange and its item lifecycles.

Commerce reports states; the machines decide whether the reported change is a
legal transition. A legal change is one event listing every item step it made,
so "one webhook, one recorded change" holds and the audit shows why.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import DomainError
from domain.identity import return_uuid
from domain.machines import IllegalTransition, fire, triggers_to

Item = dict[str, Any]


def receipt_facts(items: list[Item]) -> dict[str, bool]:
    """Guard facts for the return machine, read off the item list."""
    to_ship = [i for i in items if i.get("state") != "RETURN_NOT_REQUIRED"]
    all_received = bool(to_ship) and all(
        i["quantityReceived"] >= i["quantityToReturn"] for i in to_ship
    )
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
        self.state = target

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
        """Apply a Return Request Update; answer `updated`, `duplicate` or `stale`.

        Raises IllegalTransition (recording nothing) when Commerce reports a state
        the machines cannot reach from ours, e.g. a late update that would undo receipt.
        """
        if fingerprint == self.fingerprint:
            return "duplicate"
        if version_key < self.version_key:
            return "stale"
        new_items: list[Item] = snapshot["returnItemList"]
        item_steps = [self._item_step(new) for new in new_items]
        source, target = self.state, snapshot["state"]
        trigger = "commerce_update"
        if source != target:
            candidates = triggers_to("return", source, target)
            if not candidates:
                raise IllegalTransition("return", f"to {target}", source, [])
            step = fire("return", source, candidates[0], **_update_facts(new_items))
            if step.target != target:
                raise IllegalTransition("return", f"{step.trigger} to {target}", source, [step.trigger])
            trigger = step.trigger
        self._commerce_updated(
            items=new_items,
            refund=snapshot["refund"],
            details=snapshot["details"],
            item_steps=[s for s in item_steps if s is not None],
            version_key=max(version_key, self.version_key),
            fingerprint=fingerprint,
            trigger=trigger,
            source=source,
            target=target,
            actor=actor,
            cause=cause,
        )
        return "updated"

    def _item_step(self, new: Item) -> dict[str, Any] | None:
        old = self.item(new["returnItemId"])
        if old is None:
            return {"returnItemId": new["returnItemId"], "trigger": "add", "from": None,
                    "to": new["state"], "quantityReceived": new["quantityReceived"]}
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
        return {"returnItemId": new["returnItemId"], "trigger": step.trigger,
                "from": step.source, "to": step.target,
                "quantityReceived": new["quantityReceived"]}

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
        self.items = items
        self.refund = refund
        self.details = details
        self.version_key = version_key
        self.fingerprint = fingerprint
        self.state = target


def _update_facts(items: list[Item]) -> dict[str, bool]:
    """Commerce only reports a refund state once it knows and has recorded the refund."""
    return {**receipt_facts(items), "refund_known": True, "refund_recorded": True}
