"""Accepting an invitation from its link: /invite/#<token>, which moves the page to /invite/accept/.

The emailed link carries the invitation's secret token after "#", which browsers never send, so no
server's access log records it: the page's script posts it to /invite/ (`open_link`). As Django's
PasswordResetConfirmView does, opening the link keeps the token in the session and redirects to an
address without it, so the token is not left in the address bar and the browser's history, in the access
log line of every form the page posts, or in a Referer. Links mailed before, /invite/<token>/, open the
same way until they expire.
"""

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters

from frontend.views.base import emailed_link_page, link_secret, render_page
from hospitals.errors import DomainError
from hospitals.services import (
    accept_invitation,
    accepted_invitation,
    invitation_accepted_by,
    invitation_is_for,
    usable_invitation,
)

# What the page's address has in place of the token once the token is in the session; no token is a
# six-letter word (they are 43 characters of secrets.token_urlsafe).
URL_TOKEN = "accept"
SESSION_TOKEN = "invitation_token"
# Once the token is spent it leaves the session; the invitation's id stays, so that Back to the page
# still tells the one who accepted that it worked.
SESSION_ACCEPTED = "invitation_accepted"
# Set when a sign-in dropped the browser's open invitation (forget_another_persons_invitation), so that the
# page tells why it is gone without saying whose it was.
SESSION_SET_ASIDE = "invitation_set_aside"

# The page's words for a link that opens no invitation: whoever follows an emailed link has never seen
# its token, so the API's sentence about a token means nothing to them.
UNKNOWN_LINK = ("This invitation link no longer works: it was replaced by a newer invitation or revoked, or the "
                "link is incomplete. Use the link in the latest invitation email, or ask the hospital for a new one.")
NO_TOKEN = ("This page no longer knows your invitation: it was open too long, or the browser keeps no cookies for "
            "this site. Open the link in the invitation email again.")
SET_ASIDE = ("The invitation opened in this browser was not for the account that signed in, so it was set aside. "
             "To accept it, open the link in the invitation email again, signed out or signed in as the address "
             "it was sent to.")
# One browser, one invitation at a time: a page opened before another invitation's link must not accept
# that other invitation, for another hospital or another address, with the password typed for its own.
ANOTHER_LINK = ("Another invitation link was opened in this browser after that page: this page now shows that "
                "invitation. Check it, then accept; to accept the earlier one, open its link again.")

# Refusals that are about the password typed: shown beside the password field.
PASSWORD_REFUSALS = ("password_required", "weak_password")


@sensitive_post_parameters("link")
def open_link(request):
    """/invite/: the emailed link's page; link.js posts the token that follows its "#"."""
    if request.method != "POST":
        return emailed_link_page(request, "Accept your invitation")
    token = link_secret(request)
    if not token:
        return emailed_link_page(request, "Accept your invitation", incomplete=True)
    return _open(request, token)


# Django's report of a crash here (the debug page, a mail to ADMINS where set) lists what was posted.
@sensitive_post_parameters("password", "password_again")
def accept(request, token):
    from_link = token != URL_TOKEN
    if from_link and request.method != "POST":
        return _open(request, token)  # a link mailed before the token moved after "#"
    if not from_link:
        token = request.session.get(SESSION_TOKEN)
        if token is None:
            return _without_token(request)
    # Checked before the form is shown, so nobody chooses a password for a link that no longer works.
    try:
        invitation = usable_invitation(token)
    except DomainError as refused:
        if not from_link:
            del request.session[SESSION_TOKEN]  # it opens nothing any more: accepted elsewhere, expired, revoked
        return _refused(request, token, refused)
    if from_link:
        # A form posted to the link itself comes from a page opened before the page moved: still accepted.
        _keep_token(request, token)
    # Said before the button, not after the click: a signed-in account can accept only its own invitation.
    wrong_account = request.user.is_authenticated and not invitation_is_for(invitation, request.user)
    error, field_errors = None, {}
    if request.method == "POST":
        password = request.POST.get("password", "")
        if not from_link and request.POST.get("invitation") != str(invitation.pk):
            error = ANOTHER_LINK
        elif password != request.POST.get("password_again", password):
            field_errors["password_again"] = "The two passwords differ; type the same password twice."
        else:
            try:
                accepted = accept_invitation(token=token, password=password or None, user=request.user,
                                             request=request)
            except DomainError as refused:
                if refused.code in PASSWORD_REFUSALS:
                    field_errors["password"] = refused.detail
                else:
                    error = refused.detail
            else:
                request.session.pop(SESSION_TOKEN, None)
                request.session[SESSION_ACCEPTED] = invitation.pk
                hospital = accepted.membership.hospital
                if accepted.account_created:
                    login(request, accepted.user, backend="django.contrib.auth.backends.ModelBackend")
                elif not request.user.is_authenticated:
                    # The link proves the email, not the person at the keyboard: an existing account
                    # still signs in with its own password.
                    messages.success(request, f"You joined {hospital.name}. Sign in to continue.")
                    return redirect(f"/accounts/login/?next=/h/{hospital.slug}/")
                messages.success(request, f"Welcome to {hospital.name}.")
                return redirect("frontend:hospital-home", hospital.slug)
    context = {"error": error, "field_errors": field_errors, "invitation": invitation, "wrong_account": wrong_account,
               "role": invitation.get_role_display().lower(), "action": reverse("frontend:invite", args=[URL_TOKEN])}
    if wrong_account:
        # Signing out empties the session, token and all: the sign-out comes back through the link, which
        # keeps the token again. It travels in the form's body, and after the "#" of the address the browser
        # moves to, which it never sends: no request the page makes holds the token.
        context["sign_out_next"] = f"{reverse('frontend:invite-link')}#{token}"
    with timezone.override(invitation.hospital.tzinfo):  # the expiry, as the invitation mail gave it
        return render_page(request, "frontend/invite.html", context)


def _open(request, token):
    """Opening the link keeps its token in the session and moves to /invite/accept/; a link that opens
    nothing is refused where it is, before anybody chooses a password for it."""
    try:
        usable_invitation(token)
    except DomainError as refused:
        return _refused(request, token, refused)
    _keep_token(request, token)
    return redirect("frontend:invite", URL_TOKEN)


def _keep_token(request, token):
    request.session[SESSION_TOKEN] = token
    request.session.pop(SESSION_ACCEPTED, None)
    request.session.pop(SESSION_SET_ASIDE, None)


def _refused(request, token, refused):
    if refused.code == "invalid_token":
        return render_page(request, "frontend/invite.html", {"refused": UNKNOWN_LINK}, status=404)
    # Back after accepting, or the email's link opened again: the one who accepted is told it worked.
    accepted = invitation_accepted_by(request.user, token) if refused.code == "invitation_used" else None
    if accepted is not None:
        return render_page(request, "frontend/invite.html", {"accepted": accepted})
    return render_page(request, "frontend/invite.html", {"refused": refused.detail}, status=410)


def _without_token(request):
    """/invite/accept/ with no token in the session: after accepting (Back), or the session is gone."""
    invitation_id = request.session.get(SESSION_ACCEPTED)
    if request.user.is_authenticated:
        accepted = invitation_accepted_by(request.user, invitation_id=invitation_id)
    else:
        # An existing account accepts before it signs in: only this browser's session knows it accepted.
        accepted = accepted_invitation(invitation_id)
    if accepted is not None:
        return render_page(request, "frontend/invite.html", {"accepted": accepted})
    # "Sign in first" with another of one's accounts lands here: that, not a lost session, is the reason.
    refused = SET_ASIDE if request.session.pop(SESSION_SET_ASIDE, False) else NO_TOKEN
    return render_page(request, "frontend/invite.html", {"refused": refused}, status=404)


def forget_another_persons_invitation(sender, request, user, **kwargs):
    """On every sign-in (user_logged_in): a browser that holds someone else's open invitation (a shared
    computer the invitee walked away from) drops it, so the one who signs in next neither reads it nor,
    signing out through its page, accepts it with a password of their own. One accepted here already
    is shown only to the account that accepted it (_without_token)."""
    session = getattr(request, "session", None)
    if session is None:
        return
    token = session.get(SESSION_TOKEN)
    if token is not None:
        try:
            invitation = usable_invitation(token)
        except DomainError:
            invitation = None
        if invitation is None or not invitation_is_for(invitation, user):
            del session[SESSION_TOKEN]
            if invitation is not None:
                session[SESSION_SET_ASIDE] = True
