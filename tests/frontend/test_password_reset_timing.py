"""The password-reset page answers before its mail goes out (neurofed.mail_after_response).

It mails only addresses that have an account. Were the response to wait for the mail server, its
timing would tell anyone which addresses have one. Here the mail server holds every mail until the
test lets it go: the page must have answered by then, for an account and for an unknown address alike.
"""

import threading

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as OutboxBackend

from neurofed.mail_after_response import wait_for_mails

pytestmark = pytest.mark.django_db

relay_may_deliver = threading.Event()
held_until_released = []


class HeldRelay(OutboxBackend):
    """Delivers to the test outbox, but only once the test lets the relay go (at most 10 s)."""

    def send_messages(self, messages):
        held_until_released.append(relay_may_deliver.wait(10))
        return super().send_messages(messages)


@pytest.fixture
def held_relay(settings):
    settings.MAIL_AFTER_RESPONSE = True
    settings.EMAIL_BACKEND = f"{__name__}.HeldRelay"
    relay_may_deliver.clear()
    held_until_released.clear()
    yield
    relay_may_deliver.set()
    assert wait_for_mails()


def test_the_page_answers_before_the_mail_server_has_taken_the_mail(client, world, held_relay,
                                                                     forget_sign_in_brakes):
    response = client.post("/accounts/password-reset/", {"email": world.patient_a.email})
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert mail.outbox == []
    relay_may_deliver.set()
    assert wait_for_mails()
    # The relay was still holding the mail when the response came back, not timed out by then.
    assert held_until_released == [True]
    assert [message.to for message in mail.outbox] == [[world.patient_a.email]]
    assert "/accounts/password-reset/open/#" in mail.outbox[0].body


def test_an_unknown_address_gets_the_same_page_and_no_mail(client, world, held_relay, forget_sign_in_brakes):
    response = client.post("/accounts/password-reset/", {"email": "nobody@st-elsewhere.example"})
    assert response["Location"] == "/accounts/password-reset/sent/"
    relay_may_deliver.set()
    assert wait_for_mails()
    assert held_until_released == [] and mail.outbox == []
