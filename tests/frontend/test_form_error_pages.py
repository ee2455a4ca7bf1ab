"""A refused form ties each error to its field: the field is aria-invalid, its aria-describedby names
the error beside it, and the summary above the form names the field (frontend/_form_errors.html)."""

from html.parser import HTMLParser

import pytest

from hospitals.models import Role
from hospitals.services import invite_member
from tests.factories import make_patient

pytestmark = pytest.mark.django_db


class _ById(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.tags[attributes["id"]] = attributes


def elements(html: str) -> dict:
    """Every element with an id: {id: its attributes}."""
    parser = _ById()
    parser.feed(html)
    return parser.tags


def summary(html: str) -> str:
    start = html.index('<div class="notice error" role="alert" tabindex="-1" autofocus>')
    return html[start:html.index("</div>", start)]


def assert_marked(html: str, field_id: str, label: str, error: str) -> None:
    """The field is marked invalid, described by an error beside it that says `error`, and the
    summary names the field by its label, linked to it."""
    found = elements(html)
    field = found[field_id]
    assert field.get("aria-invalid") == "true", field
    described_by = field.get("aria-describedby", "").split()
    assert described_by and all(ref in found for ref in described_by), (described_by, field)
    error_lists = [ref for ref in described_by if found[ref].get("class") == "errorlist"]
    assert error_lists, described_by
    error_list = html[html.index(f'id="{error_lists[0]}"'):]
    assert error in error_list[:error_list.index("</ul>")]
    assert f'<a href="#{field_id}">{label}</a>: {error}' in summary(html)


@pytest.fixture(autouse=True)
def _forget_failed_logins(forget_sign_in_brakes):
    yield


def test_the_invite_form_marks_an_over_long_record_number_on_its_field(client, world):
    client.force_login(world.admin_a)
    response = client.post("/h/st-anne/members/", {"email": "new@st-anne.example", "role": Role.PATIENT,
                                                   "full_name": "Ada Lovelace", "medical_record_number": "9" * 65})
    html = response.content.decode()
    assert response.status_code == 400
    assert_marked(html, "invite-mrn", "Medical record number", "Ensure this value has at most 64 characters")
    assert "aria-invalid" not in str(elements(html)["invite-email"])


def test_the_invite_form_marks_a_refused_address_on_the_email_field(client, world):
    client.force_login(world.admin_a)
    response = client.post("/h/st-anne/members/", {"email": world.doctor_a.email, "role": Role.DOCTOR})
    assert_marked(response.content.decode(), "invite-email", "Email", "This email address already belongs to a member.")


def test_the_invitation_page_marks_the_password_field_it_is_about(client, world):
    _invitation, token = invite_member(hospital=world.a, email="new@st-anne.example", role=Role.DOCTOR,
                                       actor=world.admin_a)
    weak = client.post(f"/invite/{token}/", {"password": "123", "password_again": "123"}).content.decode()
    assert_marked(weak, "password", "Password", "This password is too short.")
    assert elements(weak)["password"]["aria-describedby"] == "password-error password-help"
    differ = client.post(f"/invite/{token}/", {"password": "a-long-new-secret-5",
                                               "password_again": "a-long-new-secret-6"}).content.decode()
    assert_marked(differ, "password_again", "Password again", "The two passwords differ")
    assert "aria-invalid" not in str(elements(differ)["password"])


def test_the_sign_in_page_marks_a_missing_password_on_its_field(client, world):
    response = client.post("/accounts/login/", {"username": world.doctor_a.email, "password": ""})
    assert_marked(response.content.decode(), "id_password", "Password", "This field is required.")


def test_the_password_change_page_describes_its_fields_with_text_that_exists(client, world):
    client.force_login(world.owner)
    response = client.post("/accounts/password/", {"old_password": "not-it", "new_password1": "short",
                                                   "new_password2": "short"})
    html = response.content.decode()
    assert_marked(html, "id_old_password", "Old password", "Your old password was entered incorrectly.")
    assert_marked(html, "id_new_password1", "New password", "This password is too short.")
    assert "id_new_password1_helptext" in elements(html)


def test_the_audit_filters_mark_the_filter_they_are_about(client, world):
    client.force_login(world.admin_a)
    long_action = client.get("/h/st-anne/audit/", {"action": "x" * 65})
    assert long_action.status_code == 400
    assert_marked(long_action.content.decode(), "audit-action", "Action", "Ensure this value has at most 64 characters")
    backwards = client.get("/h/st-anne/audit/", {"since": "2026-05-02", "until": "2026-05-01"}).content.decode()
    assert_marked(backwards, "id_until", "To", "The “To” date is before the “From” date.")
    assert "aria-invalid" not in str(elements(backwards)["id_since"])


def test_the_patient_record_marks_a_refused_date_or_record_number_on_its_field(client, world):
    # Both refusals come from hospitals.services.update_patient, after the form itself was valid.
    record = make_patient(world.a, full_name="Ada Lovelace", medical_record_number="MRN-1")
    make_patient(world.a, full_name="Holder", medical_record_number="MRN-TAKEN")
    client.force_login(world.doctor_a)
    address = f"/h/st-anne/patients/{record.pk}/"
    fields = {"full_name": "Ada Lovelace", "date_of_birth": "", "medical_record_number": "MRN-1", "notes": ""}
    future = client.post(address, {**fields, "date_of_birth": "2099-01-01"})
    assert future.status_code == 400
    assert_marked(future.content.decode(), "id_date_of_birth", "Date of birth",
                  "The date of birth is in the future; check it.")
    taken = client.post(address, {**fields, "medical_record_number": "MRN-TAKEN"}).content.decode()
    assert_marked(taken, "id_medical_record_number", "Medical record number",
                  "A patient with this medical record number already exists in the hospital.")
    assert "aria-invalid" not in str(elements(taken)["id_date_of_birth"])


def test_the_invite_form_marks_the_operators_address_and_a_taken_record_number_on_their_fields(
        client, world, django_user_model):
    django_user_model.objects.create_superuser("op@neurofed.example", "op@neurofed.example", "op-password-12")
    client.force_login(world.admin_a)
    operator = client.post("/h/st-anne/members/", {"email": "op@neurofed.example", "role": Role.DOCTOR})
    assert operator.status_code == 400
    assert_marked(operator.content.decode(), "invite-email", "Email",
                  "This address is the platform operator&#x27;s account, which is a member of no hospital; "
                  "invite another address.")
    # Sent again to the same address, a patient invitation corrects the record it named; a record number
    # another patient holds is refused there.
    make_patient(world.a, full_name="Holder", medical_record_number="MRN-TAKEN")
    patient = {"email": "new@st-anne.example", "role": Role.PATIENT, "full_name": "Ada Lovelace"}
    assert client.post("/h/st-anne/members/", {**patient, "medical_record_number": "MRN-1"}).status_code == 302
    taken = client.post("/h/st-anne/members/", {**patient, "medical_record_number": "MRN-TAKEN"}).content.decode()
    assert_marked(taken, "invite-mrn", "Medical record number",
                  "A patient with this medical record number already exists in the hospital.")


def test_the_open_hospital_form_marks_the_operators_own_address_on_the_email_field(client, world, django_user_model):
    operator = django_user_model.objects.create_superuser("op@neurofed.example", "op@neurofed.example",
                                                          "op-password-12")
    client.force_login(operator)
    response = client.post("/operator/hospitals/", {"name": "Royal Infirmary", "slug": "royal",
                                                    "admin_email": "op@neurofed.example"})
    assert response.status_code == 400
    assert_marked(response.content.decode(), "id_admin_email", "First admin&#x27;s email",
                  "This address is the platform operator&#x27;s account, which is a member of no hospital; "
                  "invite another address.")
