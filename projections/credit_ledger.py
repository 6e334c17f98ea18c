"""Which of our credits Commerce has: per order, return and payment group, in the sync ledger.

`amountCredited` is absolute, so a PUT carries Commerce's current figure plus our
credits not applied yet (SPEC section 8). A credit is applied once a PUT carrying
it was answered 2xx, never inferred from a changed figure (an agent credits too).

A crash between the 2xx and the ledger write must not credit twice. So before
the PUT the *intent* is written (the figure Commerce held, `base`, and the one
we send, `target`); after the 2xx it is confirmed. An intent still open on the
next call (a crash, or a timeout whose fate is unknown) is settled against
the figure Commerce then holds: the target means the PUT landed (applied), the
base means it did not (sent again); any other figure means someone else wrote
after us or instead of us, and we cannot tell which: it is taken as applied and
reported, because a missing credit is found by reconcile and fixed by a person
while a double credit is money gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import structlog

from projections.database import Database

log = structlog.get_logger(__name__)

CREDIT_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rf_sync_credits (order_id TEXT NOT NULL, return_id TEXT NOT NULL, "
    "payment_group_id TEXT NOT NULL, applied TEXT NOT NULL, intent TEXT, base TEXT, target TEXT, "
    "PRIMARY KEY (order_id, return_id, payment_group_id))",
)

Credits = Mapping[str, Mapping[str, str]]
"""return id -> payment group id -> amount (text), as the order view's `creditsByReturn`."""


@dataclass(frozen=True)
class Intent:
    return_id: str
    group: str
    delta: Decimal
    base: Decimal
    target: Decimal


class CreditLedger:
    """Table `rf_sync_credits`; shares the sync ledger's database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        db.create_schema([db.ddl(statement) for statement in CREDIT_SCHEMA])

    def applied(self, order_id: str) -> dict[tuple[str, str], Decimal]:
        rows = self._db.fetchall(
            "SELECT return_id, payment_group_id, applied FROM rf_sync_credits WHERE order_id = ?",
            (order_id,),
        )
        return {(r, g): Decimal(a) for r, g, a in rows}

    def open_intents(self, order_id: str) -> list[Intent]:
        rows = self._db.fetchall(
            "SELECT return_id, payment_group_id, intent, base, target FROM rf_sync_credits "
            "WHERE order_id = ? AND intent IS NOT NULL",
            (order_id,),
        )
        return [Intent(r, g, Decimal(i), Decimal(b), Decimal(t)) for r, g, i, b, t in rows]

    def settle_open(self, order_id: str, held: Mapping[str, Decimal]) -> None:
        """Close intents left by a call whose answer was never recorded (see the module)."""
        for intent in self.open_intents(order_id):
            now = held.get(intent.group)
            landed = now != intent.base
            if landed and now != intent.target:
                log.warning(
                    "credit_outcome_unknown",
                    order=order_id,
                    return_id=intent.return_id,
                    payment_group=intent.group,
                    base=str(intent.base),
                    target=str(intent.target),
                    held=str(now),
                    taken_as="applied",
                )
            self._close(order_id, [intent], landed)

    def unapplied(self, order_id: str, ours: Credits) -> dict[tuple[str, str], Decimal]:
        """Our credits per (return, payment group) that Commerce has not been sent with a 2xx."""
        done = self.applied(order_id)
        owed = {}
        for return_id, groups in ours.items():
            for group, amount in groups.items():
                rest = Decimal(amount) - done.get((return_id, group), Decimal(0))
                if rest > 0:
                    owed[(return_id, group)] = rest
        return owed

    def intend(
        self, order_id: str, owed: Mapping[tuple[str, str], Decimal], sent: Mapping[str, Decimal]
    ) -> None:
        """Before the PUT: what it carries, per return and group, and the figures around it."""
        per_group: dict[str, Decimal] = {}
        for (_, group), amount in owed.items():
            per_group[group] = per_group.get(group, Decimal(0)) + amount
        with self._db.transaction() as db:
            for (return_id, group), amount in owed.items():
                target = sent[group]
                db.execute(
                    "INSERT INTO rf_sync_credits VALUES (?, ?, ?, '0', ?, ?, ?) ON CONFLICT (order_id, "
                    "return_id, payment_group_id) DO UPDATE SET intent = excluded.intent, base = "
                    "excluded.base, target = excluded.target",
                    (order_id, return_id, group, str(amount), str(target - per_group[group]), str(target)),
                )

    def confirm(self, order_id: str, landed: bool) -> None:
        """After the PUT's answer: a 2xx applies the intents, a refusal drops them."""
        self._close(order_id, self.open_intents(order_id), landed)

    def _close(self, order_id: str, intents: list[Intent], landed: bool) -> None:
        """Decimal sums in Python: the column is text so no backend rounds money through a float."""
        done = self.applied(order_id)
        with self._db.transaction() as db:
            for intent in intents:
                key = (intent.return_id, intent.group)
                applied = done.get(key, Decimal(0)) + (intent.delta if landed else Decimal(0))
                db.execute(
                    "UPDATE rf_sync_credits SET applied = ?, intent = NULL, base = NULL, target = NULL "
                    "WHERE order_id = ? AND return_id = ? AND payment_group_id = ?",
                    (str(applied), order_id, *key),
                )
