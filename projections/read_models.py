"""Read models: the latest view of every order and return, and one row per transition.

Kept in SQLite tables beside the event store (`rf_order_view`, `rf_return_view`,
`rf_transitions`), maintained by a follower of the notification log while the
service runs, and rebuilt from scratch by `returnflow replay`. The same
functions build a row whether it is written live or rebuilt, so the two can be
compared row for row.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from eventsourcing.domain import Aggregate, DomainEvent

from domain.orders import Order
from domain.returns import ReturnRequest
from domain.views import event_view, order_view, return_view
from projections.positions import connect

TRANSITION_COLUMNS = (
    "notification_id", "kind", "subject", "version", "time", "type", "trigger", "from_state",
    "to_state", "actor", "cause", "quantities", "amounts",
)
"""Stable column names of `rf_transitions` and of `returnflow audit --all` exports."""

TRANSITIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS {name} (notification_id INTEGER PRIMARY KEY, kind TEXT, "
    "subject TEXT, version INTEGER, time TEXT, type TEXT, trigger TEXT, from_state TEXT, "
    "to_state TEXT, actor TEXT, cause TEXT, quantities TEXT, amounts TEXT)"
)
TRANSITIONS_INDEX = "CREATE INDEX IF NOT EXISTS rf_transitions_subject ON rf_transitions (subject, version)"
_QUANTITY_KEYS = ("quantities", "item_steps", "items")
_AMOUNT_KEYS = ("plan", "credited", "amounts", "totals", "refund_quote")
_ITEM_KEYS = ("returnItemId", "commerceItemId", "state", "quantityToReturn", "quantityReceived")
_ITEM_SNAPSHOTS = frozenset({"ReturnRequest.Received", "ReturnRequest.CommerceUpdated",
                             "ReturnRequest.CommerceOverridden"})
_RESERVED = frozenset({"version", "time", "type", "from", "to"})
"""Event fields that would shadow a column in the event's view: such events take the slow path."""
_QUALNAMES: dict[type, str] = {}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rf_order_view (id TEXT PRIMARY KEY, version INTEGER NOT NULL, "
    "document BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rf_return_view (id TEXT PRIMARY KEY, version INTEGER NOT NULL, "
    "document BLOB NOT NULL)",
    TRANSITIONS_TABLE.format(name="rf_transitions"),
    TRANSITIONS_INDEX,
    "CREATE TABLE IF NOT EXISTS rf_read_model_position (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "position INTEGER NOT NULL)",
)


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
        quantities: dict[str, Any] = {"items": [{k: i.get(k) for k in _ITEM_KEYS}
                                                for i in fields.get("items") or []]}
        if fields.get("item_steps"):
            quantities["item_steps"] = fields["item_steps"]
    else:
        quantities = {k: fields[k] for k in _QUANTITY_KEYS
                      if fields.get(k) and (k != "items" or isinstance(fields[k], dict))}
    amounts = {k: fields[k] for k in _AMOUNT_KEYS if fields.get(k)}
    answer = fields.get("answer")
    if answer is not None and answer.get("refundTotal"):
        amounts["refundTotal"] = answer["refundTotal"]
    is_return = isinstance(aggregate, ReturnRequest)
    subject = aggregate.commerce_id if isinstance(aggregate, ReturnRequest | Order) else str(aggregate.id)
    return (
        notification_id, "return" if is_return else "order", subject, event.originator_version,
        event.timestamp.isoformat().replace("+00:00", "Z"), name, fields.get("trigger"),
        fields.get("source"), fields.get("target"), fields.get("actor"), fields.get("cause"),
        _compact(quantities), _compact(amounts),
    )


def transition_row_from_view(notification_id: int, event: DomainEvent,
                             aggregate: Aggregate) -> tuple[Any, ...]:
    """The definition: one row per event, from the same view the history API serves."""
    view = event_view(event)
    kind = "return" if isinstance(aggregate, ReturnRequest) else "order"
    quantities = {k: view[k] for k in _QUANTITY_KEYS
                  if view.get(k) and (k != "items" or isinstance(view[k], dict))}
    if view["type"] in _ITEM_SNAPSHOTS:
        quantities = {"items": [{k: i.get(k) for k in ("returnItemId", "commerceItemId", "state",
                                                        "quantityToReturn", "quantityReceived")}
                                for i in view.get("items", [])],
                      **({"item_steps": view["item_steps"]} if view.get("item_steps") else {})}
    amounts = {k: view[k] for k in _AMOUNT_KEYS if view.get(k)}
    if "answer" in view and view["answer"].get("refundTotal"):
        amounts["refundTotal"] = view["answer"]["refundTotal"]
    subject = aggregate.commerce_id if isinstance(aggregate, Order | ReturnRequest) else str(aggregate.id)
    return (
        notification_id, kind, subject, view["version"], view["time"], view["type"],
        view["trigger"], view["from"], view["to"], view["actor"], view["cause"],
        _compact(quantities), _compact(amounts),
    )


def view_row(aggregate: Aggregate) -> tuple[str, str, int, bytes]:
    if isinstance(aggregate, ReturnRequest):
        return "rf_return_view", aggregate.commerce_id, aggregate.version, canonical(return_view(aggregate))
    if isinstance(aggregate, Order):
        return "rf_order_view", aggregate.commerce_id, aggregate.version, canonical(order_view(aggregate))
    raise TypeError(type(aggregate).__name__)


class ReadModels:
    """The read-model tables in one SQLite database; writes are batched, one transaction a page."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._lock = threading.Lock()
        self._db = connect(database)
        for statement in SCHEMA:
            self._db.execute(statement)

    def position(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT position FROM rf_read_model_position").fetchone()
        return int(row[0]) if row else 0

    def apply(self, transitions: list[tuple[Any, ...]], views: Iterable[tuple[str, str, int, bytes]],
              position: int, *, replace_transitions: bool = False, replace_views: bool = False) -> None:
        """Write a page: its transitions, the latest view of each touched resource, the position.

        A rebuild replaces the transitions with its first page and the views with
        its last, so readers never see the views empty.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if replace_transitions:
                    self._db.execute("DELETE FROM rf_transitions")
                if replace_views:
                    for table in ("rf_order_view", "rf_return_view"):
                        self._db.execute(f"DELETE FROM {table}")
                self._db.executemany(
                    f"INSERT OR REPLACE INTO rf_transitions VALUES ({','.join('?' * 13)})", transitions
                )
                for table in ("rf_order_view", "rf_return_view"):
                    rows = [(i, v, d) for t, i, v, d in views if t == table]
                    self._db.executemany(
                        f"INSERT INTO {table} (id, version, document) VALUES (?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET version = excluded.version, "
                        "document = excluded.document WHERE excluded.version >= version",
                        rows,
                    )
                self._set_position(position)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def begin_rebuild(self) -> None:
        """Transitions of a rebuild go to a fresh unindexed table; readers keep the old one."""
        with self._lock:
            self._db.execute("DROP TABLE IF EXISTS rf_transitions_rebuild")
            self._db.execute(TRANSITIONS_TABLE.format(name="rf_transitions_rebuild"))

    def add_rebuilt_transitions(self, transitions: list[tuple[Any, ...]]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT INTO rf_transitions_rebuild VALUES ({','.join('?' * 13)})", transitions)
            self._db.execute("COMMIT")

    def stage_views(self, views: Iterable[tuple[str, str, int, bytes]]) -> None:
        """A replay worker's views, for the parent's `merge_staged`."""
        with self._lock:
            self._db.execute("DROP TABLE IF EXISTS rf_views_rebuild")
            self._db.execute("CREATE TABLE rf_views_rebuild (name TEXT, id TEXT, version INTEGER, "
                             "document BLOB)")
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO rf_views_rebuild VALUES (?, ?, ?, ?)", views)
            self._db.execute("COMMIT")

    def merge_staged(self, paths: list[str]) -> list[tuple[str, str, int, bytes]]:
        """Workers' transitions into this rebuild, in notification order; answers their views."""
        names = [f"rf_part{i}" for i in range(len(paths))]
        with self._lock:
            for path, name in zip(paths, names, strict=True):
                self._db.execute(f"ATTACH DATABASE ? AS {name}", (path,))
            try:
                union = " UNION ALL ".join(f"SELECT * FROM {n}.rf_transitions_rebuild" for n in names)
                self._db.execute("BEGIN")
                self._db.execute(f"INSERT INTO rf_transitions_rebuild {union} "
                                 "ORDER BY notification_id")
                self._db.execute("COMMIT")
                views = []
                for name in names:
                    views += self._db.execute(f"SELECT * FROM {name}.rf_views_rebuild").fetchall()
            finally:
                for name in names:
                    self._db.execute(f"DETACH DATABASE {name}")
        return views

    def finish_rebuild(self, views: Iterable[tuple[str, str, int, bytes]], position: int) -> None:
        """One transaction: the rebuilt transitions replace the old (indexed once, at the end),
        the views are replaced, the position set. Readers see the old models or the new."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DROP TABLE rf_transitions")
                self._db.execute("ALTER TABLE rf_transitions_rebuild RENAME TO rf_transitions")
                self._db.execute(TRANSITIONS_INDEX)
                self._replace_views(views)
                self._set_position(position)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _replace_views(self, views: Iterable[tuple[str, str, int, bytes]]) -> None:
        for table in ("rf_order_view", "rf_return_view"):
            self._db.execute(f"DELETE FROM {table}")
        rows = list(views)
        for table in ("rf_order_view", "rf_return_view"):
            self._db.executemany(f"INSERT INTO {table} (id, version, document) VALUES (?, ?, ?)",
                                 [(i, v, d) for t, i, v, d in rows if t == table])

    def _set_position(self, position: int) -> None:
        self._db.execute(
            "INSERT INTO rf_read_model_position (id, position) VALUES (1, ?) "
            "ON CONFLICT(id) DO UPDATE SET position = excluded.position", (position,),
        )

    def rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        key = "notification_id" if table == "rf_transitions" else "id"
        with self._lock:
            rows = self._db.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
        yield from rows

    def document(self, table: str, ident: str) -> Any:
        with self._lock:
            row = self._db.execute(f"SELECT document FROM {table} WHERE id = ?", (ident,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def execute(self, statement: str, parameters: tuple[Any, ...] = ()) -> None:
        """For repairs and tests that need to reach into a table."""
        with self._lock:
            self._db.execute(statement, parameters)

    def close(self) -> None:
        with self._lock:
            self._db.close()
