"""Test doubles for Oracle Commerce: the Admin API simulator and its agent, webhooks, the seed samples."""

from tests.commerce_sim.agent import Agent
from tests.commerce_sim.edits import Edit
from tests.commerce_sim.seeds import load_seed, seed_order_submit, seed_return_request_update, seeds_dir
from tests.commerce_sim.server import Call, CommerceSimulator, Fault, create_app
from tests.commerce_sim.webhook_sender import Delivery, WebhookSender, sign

__all__ = [
    "Agent",
    "Call",
    "CommerceSimulator",
    "Delivery",
    "Edit",
    "Fault",
    "WebhookSender",
    "create_app",
    "load_seed",
    "seed_order_submit",
    "seed_return_request_update",
    "seeds_dir",
    "sign",
]
