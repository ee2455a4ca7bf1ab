"""Forms of the pages. Accounts sign in with their email, which is also their username."""

import logging
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm, SetPasswordForm
from django.core.mail import EmailMultiAlternatives
from django.template import loader
from django.utils import timezone

from hospitals import throttle
from hospitals.accounts import authenticate_by_email
from hospitals.errors import DomainError
from hospitals.models import Role
from hospitals.passwords import MAX_PASSWORD_LENGTH
from neurofed.mail_after_response import send_after_response

logger = logging.getLogger(__name__)


class BrakedSignIn:
    """Sign-in forms check the password through authenticate_by_email, the one check the API uses too,
    so every way in is held by the same brake on password guessing."""

    def clean(self):
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is not None and password:
            try:
                self.user_cache = authenticate_by_email(self.request, email, password)
            except DomainError as refusal:
                if refusal.code == "invalid_credentials":
                    raise self.get_invalid_login_error() from None
                raise forms.ValidationError(refusal.detail, code=refusal.code) from None
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class SignInForm(BrakedSignIn, AuthenticationForm):
    username = forms.CharField(
        label="Email",
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    # Refused before it reaches the password check, which would hash all of it.
    password = forms.CharField(
        label="Password", strip=False, max_length=MAX_PASSWORD_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        error_messages={"max_length": f"A password has at most {MAX_PASSWORD_LENGTH} characters; this one is longer."},
    )
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account. The password is case-sensitive.",
    }


class OperatorSignInForm(BrakedSignIn, AdminAuthenticationForm):
    """The Django admin's sign-in: the platform operator's password is the one most worth guessing."""


class InviteForm(forms.Form):
    """The Members page's invitation. A patient invitation also names the patient, whose record is
    created with it: without a record the new account could not upload a scan."""

    # The page writes its own inputs; the ids here are theirs, so the error summary links to them.
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"id": "invite-email"}),
                             error_messages={"required": "Enter the email address to invite.",
                                             "invalid": "Enter a valid email address."})
    role = forms.ChoiceField(choices=Role.choices, widget=forms.Select(attrs={"id": "invite-role"}),
                             error_messages={"invalid_choice": "Choose a role."})
    full_name = forms.CharField(max_length=200, required=False, strip=True,
                                widget=forms.TextInput(attrs={"id": "invite-name"}))
    date_of_birth = forms.DateField(
        required=False, input_formats=["%Y-%m-%d"], widget=forms.DateInput(attrs={"id": "invite-dob"}),
        error_messages={"invalid": "Enter the date of birth as year-month-day, for example 1980-04-23."},
    )
    medical_record_number = forms.CharField(max_length=64, required=False, strip=True,
                                            widget=forms.TextInput(attrs={"id": "invite-mrn"}))

    def clean(self):
        data = super().clean()
        if data.get("role") == Role.PATIENT and not data.get("full_name"):
            self.add_error("full_name", "Enter the patient's full name: their record is created with the invitation.")
        return data


class AuditFilterForm(forms.Form):
    """The audit log's filters; the dates are whole days in the site's time zone, both included."""

    action = forms.CharField(required=False, max_length=64, widget=forms.TextInput(attrs={"id": "audit-action"}))
    since = forms.DateField(required=False, label="From", input_formats=["%Y-%m-%d"],
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(required=False, label="To", input_formats=["%Y-%m-%d"],
                            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            self.add_error("until", "The “To” date is before the “From” date.")
        return data

    def trail_filters(self) -> dict:
        """Keyword arguments for hospitals.audit.audit_trail: aware datetimes bounding the chosen days."""
        data = self.cleaned_data
        since = _start_of(data["since"]) if data.get("since") else None
        # The last day there is (31 Dec 9999) has no next day to end before: it bounds nothing.
        last_day = data.get("until")
        until = _start_of(last_day + timedelta(days=1)) if last_day and last_day < date.max else None
        return {"action": data.get("action", ""), "since": since, "until": until}


def _start_of(day):
    return timezone.make_aware(datetime.combine(day, time.min))


class PatientRecordForm(forms.Form):
    """Staff correct a patient record's details (hospitals.services.update_patient)."""

    full_name = forms.CharField(label="Full name", max_length=200, strip=True,
                                error_messages={"required": "Enter the patient's full name."})
    # Year-month-day only: 03/04/1980 is March in one country and April in the next.
    date_of_birth = forms.DateField(
        label="Date of birth", required=False, input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the date of birth as year-month-day, for example 1980-04-23."},
    )
    medical_record_number = forms.CharField(label="Medical record number", max_length=64, required=False, strip=True)
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=10000,
                            help_text="For the hospital's staff; the patient does not see them.")


class NewHospitalForm(forms.Form):
    """The operator's onboarding form (hospitals.services.open_hospital checks the values again)."""

    name = forms.CharField(label="Hospital name", max_length=200, strip=True,
                           error_messages={"required": "Enter the hospital's name."})
    slug = forms.CharField(label="Short name for addresses", max_length=60, strip=True,
                           help_text="Lower-case letters, digits and dashes, starting with a letter or digit; "
                                     "its pages live at /h/short-name/.",
                           error_messages={"required": "Enter a short name, for example st-anne."})
    admin_email = forms.EmailField(label="First admin's email", max_length=254,
                                   error_messages={"required": "Enter the email address of the first admin.",
                                                   "invalid": "Enter a valid email address."})


class WeakPasswordOnItsField:
    """Django puts a weak new password's errors on the confirmation field; they belong to the password
    itself, which is where a screen reader and the eye should be sent."""

    def validate_password_for_user(self, user, password_field_name="new_password1", **kwargs):
        super().validate_password_for_user(user, "new_password1", **kwargs)


class ChangePasswordForm(WeakPasswordOnItsField, PasswordChangeForm):
    """The old password is checked under the sign-in brake: a session left open on a ward computer must
    not become a way to guess the password, and with it mint API tokens."""

    def __init__(self, user, *args, request=None, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        # Longer than any password can be, so wrong: refused without the cost of an Argon2 hash.
        if len(self.cleaned_data.get("old_password", "")) > MAX_PASSWORD_LENGTH:
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        try:
            attempt = throttle.begin_attempt(self.request, self.user.email)
        except throttle.TooManyAttempts as refused:
            raise forms.ValidationError(refused.detail, code="too_many_attempts") from None
        try:
            old_password = super().clean_old_password()
        except forms.ValidationError:
            throttle.attempt_failed(attempt, self.user)
            raise
        throttle.attempt_succeeded(attempt)
        return old_password


class ChooseNewPasswordForm(WeakPasswordOnItsField, SetPasswordForm):
    pass


class ResetPasswordForm(PasswordResetForm):
    """Django's, with the mail sent after the response (neurofed.mail_after_response): the page mails only
    addresses with an account, so waiting for the relay would let its timing tell which have one. A failure
    is logged by the account and the error's type: Django logs the whole exception, and a refused
    recipient's names the address, often a patient's."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None):
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        message = EmailMultiAlternatives(subject, loader.render_to_string(email_template_name, context), from_email,
                                         [to_email])
        if html_email_template_name is not None:
            message.attach_alternative(loader.render_to_string(html_email_template_name, context), "text/html")
        account = context["user"].pk

        def failed(exc):
            logger.error("could not email user %s a password-reset link (%s)", account, type(exc).__name__)

        send_after_response(message.send, failed=failed)
