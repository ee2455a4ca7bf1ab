"""The Django admin's sign-in (platform/urls.py): held by the same brake on password guessing as the pages."""

import pytest

from hospitals import throttle
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

OPERATOR = "operator@neurofed.example"


@pytest.fixture(autouse=True)
def operator(db):
    user = make_user(OPERATOR, is_superuser=True, is_staff=True)
    yield user
    # The counters live in the shared cache (Redis) and would outlive the test database.
    throttle.forget(email=OPERATOR)
    throttle.forget(address="127.0.0.1")


def sign_in(client, password):
    return client.post("/admin/login/?next=/admin/", {"username": OPERATOR, "password": password})


def test_the_operator_signs_in(client):
    response = sign_in(client, PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_guessing_the_operators_password_is_stopped_after_five_failures(client):
    for _ in range(5):
        assert sign_in(client, "guess-123456").status_code == 200
    locked = sign_in(client, PASSWORD)
    assert "Too many failed sign-ins for this account." in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_doctor_cannot_enter_the_admin(client, world):
    response = client.post("/admin/login/", {"username": world.doctor_a.email, "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
