"""The Django admin shows the operators' own accounts, never a hospital's members.

The operator coordinates federation and opens hospitals; they never read scans or patient details
(DESIGN §2). Django's stock user admin would list every patient's email and name and let the operator
set any doctor's password, then sign in as that doctor and open the hospital's records without a
trace in its audit trail. So the user admin here holds staff accounts that belong to no hospital, and
an account created here is an operator's. Groups are not used by NeuroFed and are not offered.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group

User = get_user_model()

admin.site.unregister(Group)
admin.site.unregister(User)


@admin.register(User)
class OperatorAccountAdmin(UserAdmin):
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

    def save_model(self, request, obj, form, change):
        if not change:
            obj.is_staff = True
        super().save_model(request, obj, form, change)
