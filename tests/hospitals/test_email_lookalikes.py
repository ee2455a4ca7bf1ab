"""An address names one account: look-alike letters ("ı", "ſ") that PostgreSQL's upper case turns into ASCII
name another address, never another person's account (hospitals/emails.py)."""

import pytest
from django.test import RequestFactory

from hospitals.accounts import authenticate_by_email
from hospitals.emails import account_by_email
from hospitals.errors import DomainError
from hospitals.models import Membership, Role
from hospitals.services import accept_invitation, invite_member
from tests.factories import PASSWORD, make_hospital, make_user

pytestmark = pytest.mark.django_db

LOOKALIKE = "alice@gmaıl.com"  # a dotless i, which upper-cases to "I"


def test_an_address_finds_its_account_in_any_case_and_a_look_alike_finds_none():
    alice, alise = make_user("alice@gmail.com"), make_user("alise@gmail.com")
    assert account_by_email("  Alice@GMAIL.com ") == alice
    assert account_by_email(LOOKALIKE) is None
    assert account_by_email("aliſe@gmail.com") is None  # a long s, which upper-cases to "S"
    assert account_by_email("ALISE@gmail.com") == alise


def test_an_invitation_to_an_address_is_never_accepted_into_a_look_alikes_account():
    mallory = make_user(LOOKALIKE)
    hospital = make_hospital("st-anne", "St Anne's")
    admin = make_user("admin@st-anne.example")
    invitation, token = invite_member(hospital=hospital, email="alice@gmail.com", role=Role.ADMIN, actor=admin)
    accepted = accept_invitation(token=token, password="a-new-passphrase-for-Alice")
    assert accepted.account_created and accepted.user != mallory
    assert accepted.user.email == "alice@gmail.com"
    assert not Membership.objects.filter(user=mallory).exists()
    assert authenticate_by_email(RequestFactory().post("/"), "alice@gmail.com", "a-new-passphrase-for-Alice") \
        == accepted.user


def test_a_look_alike_address_signs_in_to_no_account(settings):
    make_user("admin@north.example")
    request = RequestFactory().post("/")
    with pytest.raises(DomainError) as refused:
        authenticate_by_email(request, "admın@north.example", PASSWORD)
    assert refused.value.code == "invalid_credentials"
    assert authenticate_by_email(request, " ADMIN@north.example", PASSWORD).email == "admin@north.example"
