"""A password-reset mail the mail server refuses is logged without the address it was for.

Django's reset form logs the whole exception of a failed send, and smtplib's for a refused recipient
names the address (often a patient's). Here a real SMTP server on loopback refuses every recipient, and
Django's SMTP backend talks to it as it would to the hospital's relay.
"""

import logging
import socketserver
import threading

import pytest

from neurofed.mail_after_response import wait_for_mails

pytestmark = pytest.mark.django_db


class _RefusingRelay(socketserver.StreamRequestHandler):
    """Just enough SMTP to take a sender and refuse each recipient, as a relay does an unknown mailbox."""

    def handle(self):
        self.wfile.write(b"220 relay.test ESMTP\r\n")
        for line in self.rfile:
            verb = line[:4].upper()
            if verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            replies = {b"EHLO": b"250 relay.test", b"HELO": b"250 relay.test", b"MAIL": b"250 ok",
                       b"RSET": b"250 ok", b"NOOP": b"250 ok", b"RCPT": b"550 5.1.1 mailbox unavailable"}
            self.wfile.write(replies.get(verb, b"502 not implemented") + b"\r\n")


@pytest.fixture
def refusing_relay(settings):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RefusingRelay)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.server_address[1]
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("after_response", [True, False], ids=["sent after the response", "sent in the request"])
def test_a_refused_reset_mail_is_logged_by_account_and_type_not_by_address(client, world, refusing_relay, caplog,
                                                                           forget_sign_in_brakes, settings,
                                                                           after_response):
    settings.MAIL_AFTER_RESPONSE = after_response
    caplog.set_level(logging.DEBUG)
    response = client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    # The same page as a mail sent: the page must not tell whether the address has an account.
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert wait_for_mails()
    assert "SMTPRecipientsRefused" in caplog.text and str(world.patient_a.pk) in caplog.text
    assert world.patient_a.email not in caplog.text
