import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.management import CommandError, call_command

from hospitals.models import AuditEvent, Hospital, Membership, Patient

pytestmark = pytest.mark.django_db


def seed(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def snapshot():
    User = get_user_model()
    return (
        sorted(Hospital.objects.values_list("slug", "wrapped_data_key")),
        sorted(User.objects.values_list("email", "password")),
        sorted(Membership.objects.values_list("hospital__slug", "user__email", "role")),
        sorted(str(pk) for pk in Patient.objects.values_list("pk", flat=True)),
        AuditEvent.objects.count(),
    )


def test_seed_demo_creates_three_hospitals_and_prints_credentials():
    out, err = seed("--json")
    credentials = json.loads(out)
    assert "DEMO ONLY" in err
    assert len(credentials) == 19 and set(credentials[0]) == {"hospital", "email", "role", "password"}
    [operator] = [c for c in credentials if c["role"] == "operator"]
    assert operator["hospital"] == "" and get_user_model().objects.get(email=operator["email"]).is_superuser
    assert not Membership.objects.filter(user__email=operator["email"]).exists()  # a member of no hospital
    for slug in {c["hospital"] for c in credentials if c["hospital"]}:
        roles = sorted(c["role"] for c in credentials if c["hospital"] == slug)
        assert roles == ["admin", "doctor", "doctor", "patient", "patient", "patient"]
    assert Hospital.objects.count() == 3
    # Every printed credential signs in (checked for one per role: Argon2 is slow by design).
    for role in ("admin", "doctor", "patient"):
        c = next(c for c in credentials if c["role"] == role)
        user = get_user_model().objects.get(email=c["email"])
        assert check_password(c["password"], user.password) and user.password.startswith("argon2")
        assert Membership.objects.get(user=user, hospital__slug=c["hospital"]).role == role
    # Each demo patient has their own record, PHI encrypted like any other, and no name in clear on the account.
    for c in credentials:
        if c["role"] == "patient":
            assert Patient.objects.filter(user__email=c["email"], hospital__slug=c["hospital"]).count() == 1
            user = get_user_model().objects.get(email=c["email"])
            assert (user.first_name, user.last_name) == ("", "")


def test_seed_demo_twice_changes_nothing_and_still_prints_every_account():
    # One test, one seeding: eighteen Argon2 hashes take seconds on purpose.
    seed("--json")
    before = snapshot()
    out, _ = seed()
    assert "nothing changed" in out and "DEMO ONLY" in out
    assert out.count("@") == 19 and "demo-admin-" in out and "demo-operator-" in out
    assert snapshot() == before


def test_seed_demo_refuses_a_production_installation(settings):
    """Its passwords are in the README: on a server with DEBUG off it makes no account unless told the
    server is a demonstration one."""
    settings.DEMO_ACCOUNTS_ALLOWED = False
    with pytest.raises(CommandError, match="runs only where NEUROFED_ALLOW_DEMO_ACCOUNTS allows it.*set NEUROFED_ALLOW_DEMO_ACCOUNTS=1"):
        call_command("seed_demo")
    assert not Hospital.objects.exists() and not get_user_model().objects.exists()
