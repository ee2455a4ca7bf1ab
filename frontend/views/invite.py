"""Accepting an invitation from its link: /invite/<token>/."""

from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect

from frontend.views.base import render_page
from hospitals.errors import DomainError
from hospitals.services import accept_invitation, usable_invitation


def accept(request, token):
    # Checked before the form is shown, so nobody chooses a password for a link that no longer works.
    try:
        invitation = usable_invitation(token)
    except DomainError as refused:
        status = 404 if refused.code == "invalid_token" else 410
        return render_page(request, "frontend/invite.html", {"refused": refused.detail}, status=status)
    error = None
    if request.method == "POST":
        password = request.POST.get("password", "")
        if password != request.POST.get("password_again", password):
            error = "The two passwords differ; type the same password twice."
        else:
            try:
                accepted = accept_invitation(token=token, password=password or None, user=request.user,
                                             request=request)
            except DomainError as refused:
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
    context = {"error": error, "token": token, "invitation": invitation,
               "role": invitation.get_role_display().lower()}
    return render_page(request, "frontend/invite.html", context)
