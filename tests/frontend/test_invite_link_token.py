"""The invitation page keeps the link's secret token out of its address (frontend/views/invite.py).

The emailed link is opened once: its token goes into the session and the page moves to /invite/accept/,
so the address bar, the history, the log line of each form posted and any Referer hold no token.
"""

import re
from urllib.parse import urlsplit

import pytest
from django.templatetags.static import static
from django.utils import timezone

from frontend.views.invite import ANOTHER_LINK, NO_TOKEN, SESSION_TOKEN, UNKNOWN_LINK
from hospitals.models import Membership, Role
from hospitals.services import invite_member
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = {"password": "a-long-new-secret-5", "password_again": "a-long-new-secret-5"}


def _invite(world, email="fresh@st-anne.example"):
    invitation, token = invite_member(hospital=world.a, email=email, role=Role.DOCTOR, actor=world.admin_a)
    return invitation, token


def test_the_emailed_link_moves_the_page_to_an_address_without_its_token(client, world):
    invitation, token = _invite(world)
    opened = client.get(f"/invite/{token}/")
    assert opened.status_code == 302 and opened["Location"] == "/invite/accept/"
    assert client.session[SESSION_TOKEN] == token
    page = client.get("/invite/accept/")
    html = page.content.decode()
    assert page.status_code == 200 and "Accept invitation</button>" in html
    assert token not in html
    assert '<form method="post" action="/invite/accept/" novalidate>' in html
    assert f'<input type="hidden" name="invitation" value="{invitation.pk}">' in html
    assert 'href="/accounts/login/?next=/invite/accept/"' in html  # "Sign in first" comes back here too


def test_accepting_on_the_moved_page_creates_the_account_and_forgets_the_token(client, world):
    invitation, token = _invite(world)
    client.get(f"/invite/{token}/")
    weak = client.post("/invite/accept/", {"invitation": invitation.pk, "password": "123", "password_again": "123"})
    assert weak.status_code == 200 and "too short" in weak.content.decode() and token not in weak.content.decode()
    differ = client.post("/invite/accept/", {"invitation": invitation.pk, "password": "a-long-new-secret-5",
                                             "password_again": "a-long-new-secret-6"})
    assert "The two passwords differ" in differ.content.decode()
    accepted = client.post("/invite/accept/", {"invitation": invitation.pk, **NEW_PASSWORD})
    assert accepted.status_code == 302 and accepted["Location"] == "/h/st-anne/"
    assert client.session["_auth_user_id"]
    assert Membership.objects.get(user__email="fresh@st-anne.example", hospital=world.a).role == Role.DOCTOR
    assert SESSION_TOKEN not in client.session
    # Back to the page: the one who accepted is told it worked, as on the link itself.
    back = client.get("/invite/accept/")
    assert back.status_code == 200
    assert "You have accepted this invitation to join St Anne&#x27;s." in back.content.decode()


def test_an_existing_account_still_signs_in_after_accepting_on_the_moved_page(client, world):
    invitation, token = _invite(world, "doctor@north.example")
    client.get(f"/invite/{token}/")
    response = client.post("/invite/accept/", {"invitation": invitation.pk})
    assert response["Location"] == "/accounts/login/?next=/h/st-anne/"
    assert "_auth_user_id" not in client.session and SESSION_TOKEN not in client.session
    assert Membership.objects.filter(user=world.doctor_b, hospital=world.a).exists()


def test_signing_in_first_comes_back_to_the_invitation(client, world, forget_sign_in_brakes):
    invitation, token = _invite(world, "doctor@north.example")
    client.get(f"/invite/{token}/")
    signed_in = client.post("/accounts/login/?next=/invite/accept/",
                            {"username": "doctor@north.example", "password": PASSWORD})
    assert signed_in["Location"] == "/invite/accept/"
    assert "Accepting adds this account" in client.get("/invite/accept/").content.decode()
    assert client.post("/invite/accept/", {"invitation": invitation.pk})["Location"] == "/h/st-anne/"
    assert Membership.objects.filter(user=world.doctor_b, hospital=world.a).exists()


def test_signing_out_of_the_wrong_account_comes_back_to_the_form(client, world):
    invitation, token = _invite(world, "newdoc@st-anne.example")
    client.force_login(world.patient_a)
    page = client.get(f"/invite/{token}/", follow=True)
    html = page.content.decode()
    assert page.redirect_chain == [("/invite/accept/", 302)] and 'id="wrong-account"' in html
    # Signing out empties the session: the way back is the link, in the sign-out form's body only, with
    # its token after "#", which the browser does not send in the request it then makes.
    assert f'<input type="hidden" name="next" value="/invite/#{token}">' in html
    assert "/invite/accept/" not in html.split('id="wrong-account"')[1]  # no accept form for the wrong account
    back = client.post("/accounts/logout/", {"next": f"/invite/#{token}"})
    assert back["Location"] == f"/invite/#{token}"
    # There link.js posts what follows the "#", as on the emailed link's page.
    assert client.post("/invite/", {"link": token})["Location"] == "/invite/accept/"
    html = client.get("/invite/accept/").content.decode()
    assert "Accept invitation</button>" in html and 'id="wrong-account"' not in html and token not in html
    assert client.post("/invite/accept/", {"invitation": invitation.pk, **NEW_PASSWORD})["Location"] == "/h/st-anne/"
    assert Membership.objects.filter(user__email="newdoc@st-anne.example", hospital=world.a).exists()


def test_a_page_opened_before_another_invitations_link_accepts_neither(client, world):
    first, first_token = _invite(world, "first@st-anne.example")
    second, second_token = _invite(world, "second@st-anne.example")
    client.get(f"/invite/{first_token}/")
    client.get(f"/invite/{second_token}/")  # in another tab: the session now holds this one
    page = client.post("/invite/accept/", {"invitation": first.pk, **NEW_PASSWORD})
    html = page.content.decode()
    assert ANOTHER_LINK in html and "invites second@st-anne.example" in html
    assert not Membership.objects.filter(user__email__in=[first.email, second.email]).exists()
    assert client.post("/invite/accept/", {"invitation": second.pk, **NEW_PASSWORD})["Location"] == "/h/st-anne/"
    assert Membership.objects.filter(user__email="second@st-anne.example", hospital=world.a).exists()


def test_the_moved_page_without_a_token_or_with_one_that_stopped_working(client, world):
    page = client.get("/invite/accept/")
    assert page.status_code == 404 and NO_TOKEN in page.content.decode()
    assert 'type="password"' not in page.content.decode()
    invitation, token = _invite(world)
    client.get(f"/invite/{token}/")
    invitation.expires_at = timezone.now()
    invitation.save(update_fields=["expires_at"])
    expired = client.post("/invite/accept/", {"invitation": invitation.pk, **NEW_PASSWORD})
    assert expired.status_code == 410 and "has expired" in expired.content.decode()
    assert SESSION_TOKEN not in client.session
    assert not Membership.objects.filter(user__email="fresh@st-anne.example").exists()


def test_an_unusable_link_is_answered_where_it_is_and_keeps_nothing(client, world):
    unknown = client.get("/invite/nonsense/")
    assert unknown.status_code == 404 and "This invitation link no longer works" in unknown.content.decode()
    assert SESSION_TOKEN not in client.session


# The emailed link carries its token after "#": a browser never sends that part, so no server's access
# log records it. The link's page (/invite/) has link.js post it in a form's body.

def test_the_emailed_link_carries_its_token_after_the_hash_only(world, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, token = invite_member(hospital=world.a, email="fresh@st-anne.example", role=Role.DOCTOR,
                                          actor=world.admin_a, site_url="https://neurofed.example")
    link = re.search(r"Accept it here: (\S+)", mailoutbox[0].body).group(1)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path, parts.query) == ("https", "neurofed.example", "/invite/", "")
    assert parts.fragment == token


def test_the_links_page_holds_no_token_and_posts_what_follows_the_hash(client, world):
    page = client.get("/invite/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'<script type="module" src="{static("frontend/js/link.js")}"></script>' in html
    assert '<form method="post" action="/invite/" id="link-form" novalidate>' in html
    assert "<noscript>" in html and "needs JavaScript" in html  # and a field to paste the link into
    assert 'id="link-incomplete"' in html  # link.js shows it when the link lost its end


def test_posting_the_links_token_moves_to_the_accept_page(client, world):
    invitation, token = _invite(world)
    opened = client.post("/invite/", {"link": token})
    assert opened.status_code == 302 and opened["Location"] == "/invite/accept/"
    assert client.session[SESSION_TOKEN] == token
    page = client.get("/invite/accept/").content.decode()
    assert "Accept invitation</button>" in page and token not in page
    assert client.post("/invite/accept/", {"invitation": invitation.pk, **NEW_PASSWORD})["Location"] == "/h/st-anne/"
    assert Membership.objects.filter(user__email="fresh@st-anne.example", hospital=world.a).exists()


def test_the_whole_link_pasted_without_javascript_opens_it_too(client, world):
    invitation, token = _invite(world)
    opened = client.post("/invite/", {"link": f"  https://neurofed.example/invite/#{token}\n"})
    assert opened["Location"] == "/invite/accept/" and client.session[SESSION_TOKEN] == token


def test_a_posted_token_that_opens_nothing_gets_the_links_refusals(client, world):
    unknown = client.post("/invite/", {"link": "nonsense"})
    assert unknown.status_code == 404 and UNKNOWN_LINK in unknown.content.decode()
    assert SESSION_TOKEN not in client.session
    invitation, token = _invite(world)
    invitation.expires_at = timezone.now()
    invitation.save(update_fields=["expires_at"])
    expired = client.post("/invite/", {"link": token})
    assert expired.status_code == 410 and "has expired" in expired.content.decode()
    assert SESSION_TOKEN not in client.session
    empty = client.post("/invite/", {"link": "https://neurofed.example/invite/#"})
    assert empty.status_code == 400 and "This link is incomplete" in empty.content.decode()


def test_the_links_page_takes_no_token_in_its_address(client, world):
    invitation, token = _invite(world)
    page = client.get(f"/invite/?link={token}")
    assert page.status_code == 200 and SESSION_TOKEN not in client.session


def test_someone_else_signing_in_in_that_browser_drops_the_invitation(client, world, forget_sign_in_brakes):
    # A shared computer: the invitee opened the link and walked away; a colleague signs in at it next.
    invitation, token = _invite(world, "newdoc@st-anne.example")
    client.post("/invite/", {"link": token})
    signed_in = client.post("/accounts/login/", {"username": world.patient_a.email, "password": PASSWORD})
    assert signed_in.status_code == 302 and SESSION_TOKEN not in client.session
    page = client.get("/invite/accept/")
    assert page.status_code == 404 and "newdoc@st-anne.example" not in page.content.decode()


def test_back_after_an_existing_account_accepted_signed_out_says_it_worked(client, world, forget_sign_in_brakes):
    invitation, token = _invite(world, "doctor@north.example")
    client.post("/invite/", {"link": token})
    assert client.post("/invite/accept/", {"invitation": invitation.pk})["Location"].startswith("/accounts/login/")
    accepted = "You have accepted this invitation to join St Anne&#x27;s."
    back = client.get("/invite/accept/")
    assert back.status_code == 200 and accepted in back.content.decode()
    # Signed in as that account, the page still says so.
    client.post("/accounts/login/", {"username": "doctor@north.example", "password": PASSWORD})
    assert accepted in client.get("/invite/accept/").content.decode()


def test_someone_else_signing_in_after_an_acceptance_signed_out_is_told_nothing(client, world, forget_sign_in_brakes):
    make_user("nurse@north.example")
    invitation, token = _invite(world, "nurse@north.example")
    client.post("/invite/", {"link": token})
    client.post("/invite/accept/", {"invitation": invitation.pk})
    client.post("/accounts/login/", {"username": world.patient_a.email, "password": PASSWORD})
    assert client.get("/invite/accept/").status_code == 404


def test_a_sign_in_without_a_request_or_an_invitation_in_its_session_is_left_alone(client, world):
    # user_logged_in may come with request=None (code that signs a user in outside a request): no session
    # to drop anything from, and the sign-in must not fail over it.
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.send(sender=type(world.doctor_a), request=None, user=world.doctor_a)
    client.force_login(world.doctor_a)  # a session that never held an invitation
    assert SESSION_TOKEN not in client.session


def test_an_error_report_of_the_accept_form_hides_the_passwords(client, world):
    # A crash while accepting mails the admins Django's error report, with what was posted.
    from django.views.debug import SafeExceptionReporterFilter

    invitation, token = _invite(world)
    client.post("/invite/", {"link": token})
    page = client.post("/invite/accept/", {"invitation": invitation.pk, "password": "a-long-new-secret-5",
                                           "password_again": "another-long-secret-6"})
    posted = SafeExceptionReporterFilter().get_post_parameters(page.wsgi_request)
    assert "a-long-new-secret-5" not in posted.values() and "another-long-secret-6" not in posted.values()


def test_signing_in_first_as_another_account_says_why_the_invitation_is_gone(client, world, forget_sign_in_brakes):
    # "Sign in first" with the wrong one of one's accounts: the invitation is dropped as for anybody else
    # signing in, and the page says that, not that the browser lost it or keeps no cookies.
    invitation, token = _invite(world, "doctor@north.example")
    client.post("/invite/", {"link": token})
    client.post("/accounts/login/?next=/invite/accept/", {"username": world.patient_a.email, "password": PASSWORD})
    page = client.get("/invite/accept/")
    html = page.content.decode()
    assert page.status_code == 404 and NO_TOKEN.split(":")[0] not in html
    assert "was not for the account that signed in" in html and "doctor@north.example" not in html
    # Said once: opening the link again starts afresh.
    assert NO_TOKEN.split(":")[0] in client.get("/invite/accept/").content.decode()
