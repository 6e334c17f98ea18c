"""Read models: the latest view of every order and return, and one row per transition.

Kept in SQLite tables beside the event store (`rf_order_view`, `rf_return_view`,
`rf_transitions`), maintained by a follower of the notification log while the
service runs, and rebuilt from scratch by `returnflow replay`. The same
functions build a row whether it is written live or rebuilt, so the two can be
compared row for row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from eventsourcing.domain import Aggregate, DomainEvent

from domain.orders import Order
from domain.returns import ReturnRequest
from domain.views import event_view, order_view, return_view
from projections.database import Database, upsert

TRANSITION_COLUMNS = (
    "notification_id",
    "kind",
    "subject",
    "version",
    "time",
    "type",
    "trigger",
    "from_state",
    "to_state",
    "actor",
    "cause",
    "quantities",
    "amounts",
)
"""Stable column names of `rf_transitions` and of `returnflow audit --all` exports."""

TRANSITIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS {name} (notification_id {int} PRIMARY KEY, kind TEXT, "
    "subject TEXT, version {int}, time TEXT, type TEXT, trigger TEXT, from_state TEXT, "
    "to_state TEXT, actor TEXT, cause TEXT, quantities TEXT, amounts TEXT)"
)
TRANSITIONS_INDEX = "CREATE INDEX IF NOT EXISTS rf_transitions_subject ON rf_transitions (subject, version)"
_QUANTITY_KEYS = ("quantities", "item_steps", "items")
_AMOUNT_KEYS = ("plan", "credited", "amounts", "totals", "refund_quote")
_ITEM_KEYS = ("returnItemId", "commerceItemId", "state", "quantityToReturn", "quantityReceived")
_ITEM_SNAPSHOTS = frozenset(
    {"ReturnRequest.Received", "ReturnRequest.CommerceUpdated", "ReturnRequest.CommerceOverridden"}
)
_RESERVED = frozenset({"version", "time", "type", "from", "to"})
"""Event fields that would shadow a column in the event's view: such events take the slow path."""
_QUALNAMES: dict[type, str] = {}
_UPSERT_TRANSITION = upsert("rf_transitions", TRANSITION_COLUMNS, ("notification_id",))
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rf_order_view (id TEXT PRIMARY KEY, version {int} NOT NULL, "
    "document {blob} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rf_return_view (id TEXT PRIMARY KEY, version {int} NOT NULL, "
    "document {blob} NOT NULL)",
    TRANSITIONS_TABLE,
    TRANSITIONS_INDEX,
    "CREATE TABLE IF NOT EXISTS rf_read_model_position (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "position {int} NOT NULL)",
    "INSERT INTO rf_read_model_position (id, position) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
)
"""Table definitions with `projections.database` type names; `{name}` is rf_transitions."""


def canonical(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def _compact(value: Any) -> str | None:
    return None if value in (None, {}, []) else canonical(value).decode()


def transition_row(notification_id: int, event: DomainEvent, aggregate: Aggregate) -> tuple[Any, ...]:
    """The row of `transition_row_from_view`, read straight off the event (replay's hot path)."""
    fields = event.__dict__
    if not _RESERVED.isdisjoint(fields):
        return transition_row_from_view(notification_id, event, aggregate)
    name = _QUALNAMES.get(type(event))
    if name is None:
        name = _QUALNAMES[type(event)] = type(event).__qualname__
    if name in _ITEM_SNAPSHOTS:
        quantities: dict[str, Any] = {
            "items": [{k: i.get(k) for k in _ITEM_KEYS} for i in fields.get("items") or []]
        }
        if fields.get("item_steps"):
            quantities["item_steps"] = fields["item_steps"]
    else:
        quantities = {
            k: fields[k]
            for k in _QUANTITY_KEYS
            if fields.get(k) and (k != "items" or isinstance(fields[k], dict))
        }
    amounts = {k: fields[k] for k in _AMOUNT_KEYS if fields.get(k)}
    answer = fields.get("answer")
    if answer is not None and answer.get("refundTotal"):
        amounts["refundTotal"] = answer["refundTotal"]
    is_return = isinstance(aggregate, ReturnRequest)
    subject = aggregate.commerce_id if isinstance(aggregate, ReturnRequest | Order) else str(aggregate.id)
    return (
        notification_id,
        "return" if is_return else "order",
        subject,
        event.originator_version,
        event.timestamp.isoformat().replace("+00:00", "Z"),
        name,
        fields.get("trigger"),
        fields.get("source"),
        fields.get("target"),
        fields.get("actor"),
        fields.get("cause"),
        _compact(quantities),
        _compact(amounts),
    )


def transition_row_from_view(
    notification_id: int, event: DomainEvent, aggregate: Aggregate
) -> tuple[Any, ...]:
    """The definition: one row per event, from the same view the history API serves."""
    view = event_view(event)
    kind = "return" if isinstance(aggregate, ReturnRequest) else "order"
    quantities = {
        k: view[k] for k in _QUANTITY_KEYS if view.get(k) and (k != "items" or isinstance(view[k], dict))
    }
    if view["type"] in _ITEM_SNAPSHOTS:
        quantities = {
            "items": [
                {
                    k: i.get(k)
                    for k in (
                        "returnItemId",
                        "commerceItemId",
                        "state",
                        "quantityToReturn",
                        "quantityReceived",
                    )
                }
                for i in view.get("items", [])
            ],
            **({"item_steps": view["item_steps"]} if view.get("item_steps") else {}),
        }
    amounts = {k: view[k] for k in _AMOUNT_KEYS if view.get(k)}
    if "answer" in view and view["answer"].get("refundTotal"):
        amounts["refundTotal"] = view["answer"]["refundTotal"]
    subject = aggregate.commerce_id if isinstance(aggregate, Order | ReturnRequest) else str(aggregate.id)
    return (
        notification_id,
        kind,
        subject,
        view["version"],
        view["time"],
        view["type"],
        view["trigger"],
        view["from"],
        view["to"],
        view["actor"],
        view["cause"],
        _compact(quantities),
        _compact(amounts),
    )


def view_row(aggregate: Aggregate) -> tuple[str, str, int, bytes]:
    if isinstance(aggregate, ReturnRequest):
        return "rf_return_view", aggregate.commerce_id, aggregate.version, canonical(return_view(aggregate))
    if isinstance(aggregate, Order):
        return "rf_order_view", aggregate.commerce_id, aggregate.version, canonical(order_view(aggregate))
    raise TypeError(type(aggregate).__name__)


class ReadModels:
    """The read-model tables in one database (`projections.database`); one transaction a page."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._db = Database(database)
        self._db.create_schema([self._db.ddl(statement, name="rf_transitions") for statement in SCHEMA])

    def position(self) -> int:
        row = self._db.fetchone("SELECT position FROM rf_read_model_position")
        return int(row[0]) if row else 0

    def apply(
        self,
        transitions: list[tuple[Any, ...]],
        views: Iterable[tuple[str, str, int, bytes]],
        position: int,
        *,
        after: int | None = None,
        replace_transitions: bool = False,
        replace_views: bool = False,
    ) -> bool:
        """Write a page: its transitions, the latest view of each touched resource, the position.

        With `after` (the position the page was read from), only if the models are still
        there, checked in the same transaction: False, nothing written, if another process
        applied it first, so followers in several processes never write a page twice.
        A rebuild replaces the transitions with its first page and the views with
        its last, so readers never see the views empty.
        """
        try:
            self._write_page(transitions, views, position, after, replace_transitions, replace_views)
        except _Moved:
            return False
        return True

    def _write_page(
        self,
        transitions: list[tuple[Any, ...]],
        views: Iterable[tuple[str, str, int, bytes]],
        position: int,
        after: int | None,
        replace_transitions: bool,
        replace_views: bool,
    ) -> None:
        with self._db.transaction() as db:
            if after is not None and not db.execute(
                "UPDATE rf_read_model_position SET position = ? WHERE id = 1 AND position = ?",
                (position, after),
            ):
                raise _Moved
            if replace_transitions:
                db.execute("DELETE FROM rf_transitions")
            if replace_views:
                for table in ("rf_order_view", "rf_return_view"):
                    db.execute(f"DELETE FROM {table}")
            db.executemany(_UPSERT_TRANSITION, transitions)
            for table in ("rf_order_view", "rf_return_view"):
                db.executemany(
                    f"INSERT INTO {table} (id, version, document) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET version = excluded.version, "
                    f"document = excluded.document WHERE excluded.version >= {table}.version",
                    [(i, v, d) for t, i, v, d in views if t == table],
                )
            if after is None:
                self._set_position(position)

    def begin_rebuild(self) -> None:
        """Transitions of a rebuild go to a fresh unindexed table; readers keep the old one."""
        with self._db.transaction() as db:
            db.execute("DROP TABLE IF EXISTS rf_transitions_rebuild")
            db.execute(db.ddl(TRANSITIONS_TABLE, name="rf_transitions_rebuild"))

    def add_rebuilt_transitions(self, transitions: list[tuple[Any, ...]]) -> None:
        with self._db.transaction() as db:
            db.executemany(f"INSERT INTO rf_transitions_rebuild VALUES ({','.join('?' * 13)})", transitions)

    def stage_views(self, views: Iterable[tuple[str, str, int, bytes]]) -> None:
        """A replay worker's views, for the parent's `merge_staged` (SQLite scratch files)."""
        with self._db.transaction() as db:
            db.execute("DROP TABLE IF EXISTS rf_views_rebuild")
            db.execute("CREATE TABLE rf_views_rebuild (name TEXT, id TEXT, version INTEGER, document BLOB)")
            db.executemany("INSERT INTO rf_views_rebuild VALUES (?, ?, ?, ?)", views)

    def merge_staged(self, paths: list[str]) -> list[tuple[str, str, int, bytes]]:
        """Workers' transitions into this rebuild, in notification order; answers their views.

        SQLite only: the parallel replay runs on a SQLite store with SQLite read models."""
        names = [f"rf_part{i}" for i in range(len(paths))]
        db = self._db
        for path, name in zip(paths, names, strict=True):
            db.execute(f"ATTACH DATABASE ? AS {name}", (path,))
        try:
            union = " UNION ALL ".join(f"SELECT * FROM {n}.rf_transitions_rebuild" for n in names)
            with db.transaction():
                db.execute(f"INSERT INTO rf_transitions_rebuild {union} ORDER BY notification_id")
            views: list[tuple[str, str, int, bytes]] = []
            for name in names:
                views += db.fetchall(f"SELECT * FROM {name}.rf_views_rebuild")
        finally:
            for name in names:
                db.execute(f"DETACH DATABASE {name}")
        return views

    def finish_rebuild(self, views: Iterable[tuple[str, str, int, bytes]], position: int) -> None:
        """One transaction: the rebuilt transitions replace the old (indexed once, at the end),
        the views are replaced, the position set. Readers see the old models or the new."""
        with self._db.transaction() as db:
            db.execute("DROP TABLE rf_transitions")
            db.rename_table("rf_transitions_rebuild", "rf_transitions")
            db.execute(TRANSITIONS_INDEX)
            self._replace_views(views)
            self._set_position(position)

    def _replace_views(self, views: Iterable[tuple[str, str, int, bytes]]) -> None:
        for table in ("rf_order_view", "rf_return_view"):
            self._db.execute(f"DELETE FROM {table}")
        rows = list(views)
        for table in ("rf_order_view", "rf_return_view"):
            self._db.executemany(
                f"INSERT INTO {table} (id, version, document) VALUES (?, ?, ?)",
                [(i, v, d) for t, i, v, d in rows if t == table],
            )

    def _set_position(self, position: int) -> None:
        self._db.execute(
            "INSERT INTO rf_read_model_position (id, position) VALUES (1, ?) "
            "ON CONFLICT(id) DO UPDATE SET position = excluded.position",
            (position,),
        )

    def rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        key = "notification_id" if table == "rf_transitions" else "id"
        yield from self._db.fetchall(f"SELECT * FROM {table} ORDER BY {key}")

    def returns_by_state(self) -> list[tuple[str, int, str]]:
        """Per state a return is in now: how many, and when the longest-waiting one entered it
        (its last transition's time); for the age-in-state gauge."""
        return [
            (str(state), int(count), str(oldest))
            for state, count, oldest in self._db.fetchall(
                "SELECT t.to_state, COUNT(*), MIN(t.time) FROM rf_transitions t JOIN ("
                "SELECT subject, MAX(version) AS version FROM rf_transitions "
                "WHERE kind = 'return' AND to_state IS NOT NULL GROUP BY subject) last "
                "ON t.subject = last.subject AND t.version = last.version "
                "WHERE t.kind = 'return' GROUP BY t.to_state"
            )
        ]

    def document(self, table: str, ident: str) -> Any:
        row = self._db.fetchone(f"SELECT document FROM {table} WHERE id = ?", (ident,))
        return orjson.loads(row[0]) if row else None

    def execute(self, statement: str, parameters: tuple[Any, ...] = ()) -> None:
        """For repairs and tests that need to reach into a table."""
        self._db.execute(statement, parameters)

    def close(self) -> None:
        self._db.close()


class _Moved(Exception):
    """Another follower applied this page first."""
