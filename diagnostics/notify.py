"""Scan events pushed to websockets through the channel layer (see diagnostics/consumers.py).

Events carry ids and states only, never a label or a probability: whether a patient may see the AI
result is decided when they fetch the scan, so nothing can leak through the push channel.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def scan_group(scan_id) -> str:
    return f"scan.{scan_id}"


def worklist_group(hospital_id) -> str:
    return f"worklist.{hospital_id}"


def scan_event(scan, event: str) -> dict:
    return {
        "type": "scan.event",  # the consumer method that relays it: scan_event
        "event": event,
        "scan": str(scan.id),
        "status": scan.status,
        "failure_code": scan.failure_code,
        "review_state": scan.review_state,
    }


async def _send_all(layer, message: dict, groups: list[str]) -> None:
    for group in groups:
        await layer.group_send(group, message)


def _send(message: dict, groups: list[str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # One event loop for all groups: each async_to_sync call from a plain thread starts a new loop,
        # and the Redis layer opens a connection per loop.
        async_to_sync(_send_all)(layer, message, groups)
    except Exception:
        # A push is a courtesy: the state is in the database and a page can fetch it, so a
        # channel-layer outage must never fail an upload or an analysis.
        logger.exception("could not push %s for scan %s", message["event"], message["scan"])


def scan_changed_on_commit(scan, event: str = "scan.status") -> None:
    """Push the scan's state, as it is now, once the transaction that changed it has committed."""
    message = scan_event(scan, event)
    groups = [scan_group(scan.id)]
    if scan.source == "upload":  # imported training cases are nobody's work
        groups.append(worklist_group(scan.hospital_id))
    transaction.on_commit(lambda: _send(message, groups))
