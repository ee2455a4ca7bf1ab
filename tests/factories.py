"""Plain factory functions with defaults (no factory library): what a test needs, spelled out."""

import itertools

from django.contrib.auth import get_user_model

from hospitals.models import Role
from hospitals.services import add_member, create_hospital, create_patient

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-9"


def make_user(email=None, password=PASSWORD, **extra):
    n = next(_counter)
    email = email or f"user{n}@example.org"
    return get_user_model().objects.create_user(username=email, email=email, password=password, **extra)


def make_hospital(slug=None, name=None):
    n = next(_counter)
    slug = slug or f"hospital-{n}"
    return create_hospital(slug=slug, name=name or f"Hospital {n}")


def make_member(hospital, role, email=None):
    user = make_user(email)
    add_member(hospital=hospital, user=user, role=role)
    if role == Role.PATIENT:
        create_patient(hospital=hospital, full_name=f"Patient {user.pk}", user=user)
    return user


def make_patient(hospital, full_name="Ada Lovelace", **kwargs):
    return create_patient(hospital=hospital, full_name=full_name, **kwargs)
