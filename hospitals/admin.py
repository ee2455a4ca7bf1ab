"""The Django admin shows the operators' own accounts, never a hospital's members.

The operator coordinates federation and opens hospitals; they never read scans or patient details
(DESIGN §2). Django's stock user admin would list every patient's email and name and let the operator
set any doctor's password, then sign in as that doctor and open the hospital's records without a
trace in its audit trail. So the user admin here holds staff accounts that belong to no hospital, and
an account created here is an operator's, named by its email. Groups are not used by NeuroFed and are
not offered.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import BaseUserCreationForm
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import Group
from django.db.models.functions import Lower

from hospitals.accounts import password_changed
from hospitals.emails import accounts_with_email

User = get_user_model()


class OperatorAccountCreationForm(BaseUserCreationForm):
    """A new operator: signs in by email (as everyone does here), and is a superuser (DESIGN §2)."""

    email = forms.EmailField(label="Email address")

    class Meta(BaseUserCreationForm.Meta):
        fields = ("email",)
        field_classes = {}

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        # One sentence whoever holds the address: the operator must not learn who has a hospital account.
        if accounts_with_email(email).exists() or User.objects.alias(key=Lower("username")).filter(key=email).exists():
            raise forms.ValidationError("This address cannot be used for a new operator account.")
        return email

    def save(self, commit=True):
        self.instance.username = self.instance.email = self.cleaned_data["email"]
        self.instance.is_staff = self.instance.is_superuser = True
        return super().save(commit=commit)

admin.site.unregister(Group)
admin.site.unregister(User)


@admin.register(User)
class OperatorAccountAdmin(UserAdmin):
    add_form = OperatorAccountCreationForm
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    list_display = ("email", "first_name", "last_name", "is_superuser", "is_active", "last_login")
    list_filter = ("is_superuser", "is_active")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Access", {"fields": ("is_active", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).filter(is_staff=True, memberships__isnull=True).distinct()

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:  # saved; a refused form is shown again
            password_changed(self.get_object(request, unquote(id)))
        return response


# A new password ends the account's API tokens wherever it is set (hospitals.accounts.password_changed); the
# admin's own "Change password" page is the admin site's, so it is wrapped here.
_admin_password_change = admin.site.password_change


def _password_change_ending_tokens(request, extra_context=None):
    response = _admin_password_change(request, extra_context)
    if request.method == "POST" and response.status_code == 302:
        password_changed(request.user)
    return response


admin.site.password_change = _password_change_ending_tokens
