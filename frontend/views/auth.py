"""Sign in, sign out and password reset: Django's auth views with NeuroFed's templates.

The templates live under frontend/auth/ rather than registration/, because django.contrib.admin ships
registration/ templates and comes first in INSTALLED_APPS.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.mail import send_mail
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from frontend.forms import ChangePasswordForm, ChooseNewPasswordForm, ResetPasswordForm, SignInForm
from frontend.views.base import emailed_link_page, link_secret, render_page, signed_in
from hospitals import throttle
from hospitals.accounts import password_changed, reset_login_failures

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    template_name = "frontend/auth/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        # A sign-in held by the brake on guessing answers 429, as the API does, so that monitoring and
        # scripted clients can tell it from a wrong password.
        if form.has_error(NON_FIELD_ERRORS, code="too_many_attempts"):
            response.status_code = 429
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "frontend/auth/password_reset_confirm.html"
    form_class = ChooseNewPasswordForm
    success_url = reverse_lazy("frontend:password-reset-complete")

    def form_valid(self, form):
        # A new password is the way out of a sign-in lock: whoever was guessing did not have the mailbox.
        reset_login_failures(form.user.email)
        response = super().form_valid(form)
        password_changed(form.user)
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """A signed-in person changes their password; their other sign-ins end with the old one."""

    template_name = "frontend/auth/password_change.html"
    form_class = ChangePasswordForm
    success_url = reverse_lazy("frontend:home")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form):
        response = super().form_valid(form)  # keeps this sign-in; every other session is signed out
        password_changed(form.user)
        messages.success(self.request, "Your password has been changed. You were signed out everywhere else.")
        _tell_password_changed(form.user, self.request)
        return response


class LogoutView(auth_views.LogoutView):
    """Signing out is a POST (a link or an image on another site must not sign anyone out); typing the
    address is a common way to try, so a GET shows the sign-out button instead of refusing."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        return render_page(request, "frontend/auth/logout.html")

    def post(self, request, *args, **kwargs):
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        # The sign-in page alone looks just as it did before signing in: someone on a shared computer
        # needs to read that their results are no longer open on it.
        if was_signed_in:
            messages.success(request, "You have signed out.")
        return response


def _tell_password_changed(user, request) -> None:
    """Mail the account's owner: a change they did not make is how they learn of a stolen sign-in."""
    reset = request.build_absolute_uri(reverse("frontend:password-reset"))
    try:
        send_mail(
            subject="Your NeuroFed password was changed",
            message=("The password of your NeuroFed account was just changed.\n\n"
                     f"If you did not change it, choose a new one at once: {reset}\n"
                     "and tell your hospital's NeuroFed administrator.\n"),
            from_email=None,
            recipient_list=[user.email],
        )
    except Exception as exc:
        # The new password is in place; a mail server that is down must not turn that into an error page.
        # The exception's text can hold the address the server refused, which must not reach the logs.
        logger.error("could not email user %s that their password was changed (%s)", user.pk, type(exc).__name__)


login = LoginView.as_view()
# signed_in: a change posted after the sign-in ended comes back here with a note, as every form does.
password_change = signed_in(PasswordChangeView.as_view())
logout = LogoutView.as_view()
def _link_lifetime() -> str:
    """How long a reset link works, in the words the mail gives it ("1 hour", "90 minutes", "2 days")."""
    seconds = settings.PASSWORD_RESET_TIMEOUT
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length and seconds % length == 0:
            count = seconds // length
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "frontend/auth/password_reset_form.html"
    email_template_name = "frontend/auth/password_reset_email.txt"
    subject_template_name = "frontend/auth/password_reset_subject.txt"
    form_class = ResetPasswordForm
    success_url = reverse_lazy("frontend:password-reset-done")

    def form_valid(self, form):
        self.extra_email_context = {"link_lifetime": _link_lifetime()}
        if not throttle.reset_mail_allowed(self.request, form.cleaned_data["email"]):
            # The same page as a mail sent: the limit must not tell whether the address has an account.
            logger.warning("password-reset mail not sent: the hourly limit for this address or client is reached")
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


@sensitive_post_parameters("link")
@never_cache
def password_reset_link(request):
    """/accounts/password-reset/open/: the mailed link's page. Its account and token follow the "#"
    (``<uidb64>/<token>``), which link.js posts here.

    What Django's PasswordResetConfirmView does on the first opening of a link with the token in its path
    (links mailed before still open that way): the token goes into the session and the page moves to the
    set-password address; a link that opens nothing gets that view's "no longer works" page.
    """
    if request.method != "POST":
        return emailed_link_page(request, "Choose a new password")
    secret = link_secret(request)
    if not secret:
        return emailed_link_page(request, "Choose a new password", incomplete=True)
    uidb64, _, token = secret.partition("/")
    confirm = PasswordResetConfirmView()
    user = confirm.get_user(uidb64)
    if user is None or not confirm.token_generator.check_token(user, token):
        return render_page(request, confirm.template_name, {"validlink": False})
    request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN] = token
    # The account as the mail writes it: base64 decoding skips stray characters, which the address
    # must not carry.
    return redirect("frontend:password-reset-confirm", uidb64=urlsafe_base64_encode(force_bytes(user.pk)),
                    token=confirm.reset_url_token)


password_reset = PasswordResetView.as_view()
password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="frontend/auth/password_reset_done.html")
password_reset_confirm = PasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="frontend/auth/password_reset_complete.html"
)
