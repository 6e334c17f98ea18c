"""Aggregate ids derived from Commerce ids, so a duplicate creation collides in the store."""

from __future__ import annotations

from uuid import UUID, uuid5

NAMESPACE = UUID("5f1c1f36-6d0e-4a8e-9f38-2b1a0c6f7e11")


def order_uuid(commerce_order_id: str) -> UUID:
    return uuid5(NAMESPACE, f"order:{commerce_order_id}")


def return_uuid(commerce_return_id: str) -> UUID:
    return uuid5(NAMESPACE, f"return:{commerce_return_id}")
