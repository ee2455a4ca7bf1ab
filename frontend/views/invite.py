"""Accepting an invitation from its link: /invite/<token>/."""

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect
from django.utils import timezone

from frontend.views.base import render_page
from hospitals.errors import DomainError
from hospitals.services import accept_invitation, invitation_accepted_by, invitation_is_for, usable_invitation

# The page's words for a link that opens no invitation: whoever follows an emailed link has never seen
# its token, so the API's sentence about a token means nothing to them.
UNKNOWN_LINK = ("This invitation link no longer works: it was replaced by a newer invitation or revoked, or the "
                "link is incomplete. Use the link in the latest invitation email, or ask the hospital for a new one.")

# Refusals that are about the password typed: shown beside the password field.
PASSWORD_REFUSALS = ("password_required", "weak_password")


def accept(request, token):
    # Checked before the form is shown, so nobody chooses a password for a link that no longer works.
    try:
        invitation = usable_invitation(token)
    except DomainError as refused:
        if refused.code == "invalid_token":
            return render_page(request, "frontend/invite.html", {"refused": UNKNOWN_LINK}, status=404)
        # Back after accepting, or the email's link opened again: the one who accepted is told it worked.
        accepted = invitation_accepted_by(request.user, token) if refused.code == "invitation_used" else None
        if accepted is not None:
            return render_page(request, "frontend/invite.html", {"accepted": accepted})
        return render_page(request, "frontend/invite.html", {"refused": refused.detail}, status=410)
    # Said before the button, not after the click: a signed-in account can accept only its own invitation.
    wrong_account = request.user.is_authenticated and not invitation_is_for(invitation, request.user)
    error, field_errors = None, {}
    if request.method == "POST":
        password = request.POST.get("password", "")
        if password != request.POST.get("password_again", password):
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
    context = {"error": error, "field_errors": field_errors, "token": token, "invitation": invitation, "wrong_account": wrong_account,
               "role": invitation.get_role_display().lower()}
    with timezone.override(invitation.hospital.tzinfo):  # the expiry, as the invitation mail gave it
        return render_page(request, "frontend/invite.html", context)

