"""Signing in and out, and switching hospital, in a real browser against daphne."""

import pytest

from hospitals.models import Role
from hospitals.services import add_member
from tests.factories import PASSWORD, make_hospital, make_member
from tests.frontend.conftest import PHONE, assert_fits_width, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_sign_in_switch_hospital_and_sign_out(new_page):
    a = make_hospital("st-anne", "St Anne's")
    b = make_hospital("north-general", "North General")
    doctor = make_member(a, Role.DOCTOR, "doctor@st-anne.example")
    add_member(hospital=b, user=doctor, role=Role.ADMIN)

    page = new_page()
    page.goto("/")
    assert page.url.endswith("/accounts/login/?next=/")
    sign_in(page, doctor, PASSWORD)
    page.get_by_role("link", name="St Anne's").click()
    page.get_by_role("heading", name="Worklist").wait_for()
    switcher = page.locator("details.switcher > summary")
    assert switcher.inner_text().startswith("St Anne's")
    assert page.get_by_role("link", name="Members").count() == 0  # a doctor here

    switcher.click()
    page.get_by_role("link", name="North General").click()
    page.get_by_role("heading", name="Worklist").wait_for()
    assert switcher.inner_text().startswith("North General")
    assert page.get_by_role("link", name="Members").count() == 1  # an admin there
    screenshot(page, "auth-switched-hospital")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    page.goto("/h/north-general/")
    assert "/accounts/login/" in page.url


def test_wrong_password_keyboard_only(new_page):
    hospital = make_hospital()
    patient = make_member(hospital, Role.PATIENT)
    page = new_page(PHONE)
    page.goto("/accounts/login/")
    # The email field has focus on arrival; everything else is reachable with Tab and Enter.
    page.keyboard.type(patient.email)
    page.keyboard.press("Tab")
    page.keyboard.type("not-the-password")
    page.keyboard.press("Enter")
    page.get_by_role("alert").wait_for()
    assert "do not match" in page.get_by_role("alert").inner_text()
    assert_fits_width(page)
    screenshot(page, "auth-login-error-phone")
