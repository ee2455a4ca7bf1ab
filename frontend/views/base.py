"""What every page shares: the member's hospital from the URL, the navigation, the friendly error pages."""

import functools
from urllib.parse import unquote, urlsplit

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.middleware import csrf
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme

from hospitals.access import access_membership
from hospitals.models import Membership, Role

STAFF = (Role.DOCTOR, Role.ADMIN)
ADMIN = (Role.ADMIN,)

# (label, url name, roles that see it); the order is the order in the header.
_NAV = [
    ("My scans", "frontend:scans", (Role.PATIENT,)),
    ("Upload", "frontend:upload", (Role.PATIENT,)),
    ("Worklist", "frontend:worklist", STAFF),
    ("Members", "frontend:members", (Role.ADMIN,)),
    ("Settings", "frontend:settings", (Role.ADMIN,)),
    ("Federation", "frontend:federation", (Role.ADMIN,)),
    ("Audit log", "frontend:audit", (Role.ADMIN,)),
]


def navigation(request, membership):
    items = []
    for label, name, roles in _NAV:
        if membership.role in roles:
            url = reverse(name, args=[membership.hospital.slug])
            items.append({"label": label, "url": url, "current": request.path == url})
    return items


def render_page(request, template, context=None, *, membership=None, status=200):
    context = dict(context or {})
    if request.user.is_authenticated:
        context["memberships"] = Membership.objects.filter(user=request.user).select_related("hospital")
    if membership is not None:
        context["membership"] = membership
        context["hospital"] = membership.hospital
        context["nav"] = navigation(request, membership)
    return render(request, template, context, status=status)


def not_found(request, exception=None):
    return render_page(request, "404.html", status=404)


def forbidden(request, exception=None):
    return render_page(request, "403.html", status=403)


def stale_form(request, reason=""):
    """Django's CSRF_FAILURE_VIEW: a form sent from a page that was out of date (opened before a sign-in
    or sign-out in another tab, or long ago). Nothing was done; the person is sent back to that page.

    A missing cookie is the one cause that coming back does not cure: the browser refuses cookies.
    """
    if request.path == reverse("frontend:logout"):
        # A sign-out button on an out-of-date page: "fill in the form again" fits no button, and a
        # person on a shared computer must not walk away signed in. The sign-out page has a fresh button.
        return render_page(request, "frontend/auth/logout.html", {"stale": True}, status=403)
    context = {"back": _page_posted_from(request), "no_cookie": reason == csrf.REASON_NO_CSRF_COOKIE}
    return render_page(request, "frontend/errors/stale_form.html", context, status=403)


def signed_in(view):
    """Sign-in first, as login_required, except for a form posted after the sign-in ended.

    Its address only takes POSTs, so sending the person back there after signing in would end on a
    bare "method not allowed": they go back to the page the form was on instead, told that nothing
    was changed.
    """

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.method in ("GET", "HEAD"):
            return redirect_to_login(request.get_full_path())
        messages.info(request, "Your sign-in had ended, so nothing was changed. Sign in, then do it again.")
        return redirect_to_login(_page_posted_from(request))

    return wrapper


def _page_posted_from(request) -> str:
    referer = request.META.get("HTTP_REFERER", "")
    if not url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        return "/"
    parts = urlsplit(referer)
    page = parts.path + (f"?{parts.query}" if parts.query else "")
    # A path of "//other.example/…" is another site to a browser once it is a link on its own.
    return page if page.startswith("/") and url_has_allowed_host_and_scheme(page, allowed_hosts=set()) else "/"


def hospital_page(roles=None):
    """A page under /h/<slug>/: the view gets the member's Membership instead of the slug.

    A stranger to the hospital sees the same friendly 404 as for a page that does not exist, so no URL
    tells whether a hospital or a scan exists (DESIGN §2). The error pages are rendered here rather than
    by Django's handler404, which DEBUG replaces with its technical page.
    """

    def decorate(view):
        @signed_in
        @functools.wraps(view)
        def wrapper(request, slug, *args, **kwargs):
            try:
                membership = access_membership(request.user, slug, roles=roles)
                with timezone.override(membership.hospital.tzinfo):  # its staff read times on its clock
                    return view(request, membership, *args, **kwargs)
            except Http404:
                return not_found(request)
            except PermissionDenied:
                return forbidden(request)

        return wrapper

    return decorate


def operator_page(view):
    """A page of the platform operator (a superuser): anyone else gets the same not-found page as for
    any address they may not open."""

    @signed_in
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_superuser:
            return not_found(request)
        return view(request, *args, **kwargs)

    return wrapper


# An emailed link's secret (an invitation's token, a password reset's account and token) follows its "#":
# browsers never send that part, so it reaches no access log, a proxy's or daphne's. The link's page is
# the same for every link; link.js posts what follows the "#" in the body of the page's form.
def link_secret(request) -> str:
    """What follows the "#" of the link posted from a link's page: link.js posts only that part; without
    JavaScript, the whole link is pasted into the page's field."""
    posted = request.POST.get("link", "").strip()
    secret = posted.partition("#")[2] if "#" in posted else posted
    # Mail gateways that rewrite links may percent-encode the fragment ("/" as %2F); tokens and account ids
    # are URL-safe base64, so decoding changes nothing else.
    return unquote(secret)


def emailed_link_page(request, heading: str, *, incomplete: bool = False):
    """The page an emailed link opens, holding no secret: its script or its field posts the link's end."""
    context = {"heading": heading, "action": request.path, "incomplete": incomplete}
    return render_page(request, "frontend/emailed_link.html", context, status=400 if incomplete else 200)


def report_invitation_mail(request, invitation, sent: str) -> None:
    """Tell the inviter ``sent`` once the invitation's mail left, or that it did not and what to do."""
    if invitation.mail_sent is False:
        messages.error(request, mail_not_sent(invitation))
    else:
        messages.success(request, sent)


def mail_not_sent(invitation) -> str:
    """What an admin or the operator is told when an invitation's mail did not leave (its `mail_sent`, set by
    hospitals.services once the mail was tried)."""
    said = (f"The invitation is pending, but the email to {invitation.email} could not be sent: the mail server "
            "did not take it. Ask IT staff to check the mail settings (the log names the error), then invite "
            "the address again.")
    if invitation.replaced_sent_at is not None:
        # The invitee now holds no working link at all: the one they may have was revoked by this invitation.
        said += f" {replaced_sentence(invitation)}"
    return said


def replaced_sentence(invitation) -> str:
    """The sentence for an invitation that replaced an earlier one (its `replaced_sent_at`)."""
    earlier = date_format(timezone.localtime(invitation.replaced_sent_at), "j M Y, H:i T")
    return f"It replaces the invitation sent on {earlier}: the link in that earlier email no longer works."
