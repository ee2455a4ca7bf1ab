"""Sign in, sign out and password reset: Django's auth views with NeuroFed's templates.

The templates live under frontend/auth/ rather than registration/, because django.contrib.admin ships
registration/ templates and comes first in INSTALLED_APPS.
"""

from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

from frontend.forms import SignInForm

login = auth_views.LoginView.as_view(
    template_name="frontend/auth/login.html", authentication_form=SignInForm, redirect_authenticated_user=True
)
logout = auth_views.LogoutView.as_view()
password_reset = auth_views.PasswordResetView.as_view(
    template_name="frontend/auth/password_reset_form.html",
    email_template_name="frontend/auth/password_reset_email.txt",
    subject_template_name="frontend/auth/password_reset_subject.txt",
    success_url=reverse_lazy("frontend:password-reset-done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="frontend/auth/password_reset_done.html")
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="frontend/auth/password_reset_confirm.html",
    success_url=reverse_lazy("frontend:password-reset-complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="frontend/auth/password_reset_complete.html"
)
