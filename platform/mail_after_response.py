"""Mail sent after the response, on a thread of its own.

A page that waits for the mail server before it answers tells, by how long it takes, whether it sent
anything. The password-reset page mails only addresses that have an account, so with the mail sent
inside the request anyone could time the page to learn which addresses do. Such a page builds what it
needs inside the request and hands the sending here.

The thread touches no database (the caller prepares everything), so it needs no connection of its own.
EMAIL_TIMEOUT bounds each attempt. A mail still being sent when the process stops is lost, as one the
relay refused is: the person asks again.
"""

import logging
import threading
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger(__name__)

_sending: set[threading.Thread] = set()
_sending_lock = threading.Lock()


def send_after_response(send: Callable[[], None], *, failed: Callable[[Exception], None]) -> None:
    """Run `send` on a thread of its own; `failed` reports an exception it raised (nothing else sees it).

    With MAIL_AFTER_RESPONSE off (the tests, which read the outbox as the response returns) it runs here.
    """
    if not settings.MAIL_AFTER_RESPONSE:
        _send_reporting(send, failed)
        return
    thread = threading.Thread(target=_send_tracked, args=(send, failed), name="mail-after-response", daemon=True)
    with _sending_lock:
        _sending.add(thread)
    thread.start()


def wait_for_mails(timeout_s: float = 30.0) -> bool:
    """Wait for the mails being sent after their responses; True when none is left."""
    with _sending_lock:
        threads = list(_sending)
    for thread in threads:
        thread.join(timeout_s)
    with _sending_lock:
        return not _sending


def _send_tracked(send, failed) -> None:
    try:
        _send_reporting(send, failed)
    finally:
        with _sending_lock:
            _sending.discard(threading.current_thread())


def _send_reporting(send, failed) -> None:
    try:
        send()
    except Exception as exc:
        try:
            failed(exc)
        except Exception:
            # The report must not name the recipient either, so not even its own failure is logged whole.
            logger.error("a mail sent after its response failed, and so did reporting it")
