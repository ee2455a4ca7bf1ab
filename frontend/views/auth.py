"""Sign in, sign out and password reset: Django's auth views with NeuroFed's templates.

The templates live under frontend/auth/ rather than registration/, because django.contrib.admin ships
registration/ templates and comes first in INSTALLED_APPS.
"""

from django.contrib.auth import views as auth_views
from django.core.exceptions import NON_FIELD_ERRORS
from django.urls import reverse_lazy

from frontend.forms import SignInForm
from hospitals.accounts import reset_login_failures


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
    success_url = reverse_lazy("frontend:password-reset-complete")

    def form_valid(self, form):
        # A new password is the way out of a sign-in lock: whoever was guessing did not have the mailbox.
        reset_login_failures(form.user.email)
        return super().form_valid(form)


login = LoginView.as_view()
logout = auth_views.LogoutView.as_view()
password_reset = auth_views.PasswordResetView.as_view(
    template_name="frontend/auth/password_reset_form.html",
    email_template_name="frontend/auth/password_reset_email.txt",
    subject_template_name="frontend/auth/password_reset_subject.txt",
    success_url=reverse_lazy("frontend:password-reset-done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="frontend/auth/password_reset_done.html")
password_reset_confirm = PasswordResetConfirmView.as_view()
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="frontend/auth/password_reset_complete.html"
)
