"""The operator's hospitals page (/operator/hospitals/, frontend/views/hospitals.py): onboarding a tenant."""

import pytest

from hospitals.models import AuditEvent, Hospital, Invitation, Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/operator/hospitals/"


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator@neurofed.example", "operator@neurofed.example",
                                                      PASSWORD)


def test_only_the_operator_opens_it(client, world):
    assert client.get(URL)["Location"].startswith("/accounts/login/")
    for member in (world.admin_a, world.doctor_a, world.owner):
        client.force_login(member)
        assert client.get(URL).status_code == 404
        assert client.post(URL, {"name": "X", "slug": "x", "admin_email": "x@x.example"}).status_code == 404
    assert not Hospital.objects.filter(slug="x").exists()


def test_the_operator_sees_every_hospital_by_counts_not_people(client, world, operator):
    client.force_login(operator)
    html = client.get(URL).content.decode()
    assert "St Anne" in html and "North General" in html
    row = html.split("/h/st-anne/")[1].split("</tr>")[0]
    assert '<td data-label="Admins">1</td><td data-label="Doctors">2</td>' in row
    assert '<td data-label="Patients">2</td>' in row
    assert "@st-anne.example" not in html


def test_the_operator_opens_a_hospital_and_its_first_admin_is_invited(client, world, operator, mailoutbox,
                                                                       django_capture_on_commit_callbacks):
    client.force_login(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"name": "  Royal   Infirmary ", "slug": "royal", "admin_email": "IT@Royal.example"},
                               follow=True)
    assert response.redirect_chain[-1] == (URL, 302)
    assert "Royal Infirmary is open at /h/royal/" in response.content.decode()
    hospital = Hospital.objects.get(slug="royal")
    assert hospital.name == "Royal Infirmary" and bytes(hospital.wrapped_data_key)
    invitation = Invitation.objects.get(hospital=hospital)
    assert invitation.email == "it@royal.example" and invitation.role == Role.ADMIN
    [message] = mailoutbox
    assert message.to == ["it@royal.example"] and "/invite/" in message.body
    assert set(AuditEvent.objects.filter(hospital_id=hospital.pk).values_list("action", flat=True)) == {
        "hospital.create", "invitation.create"}


@pytest.mark.django_db(transaction=True)
def test_a_first_admin_whose_mail_fails_is_not_said_to_be_sent(client, world, operator, unreachable_mail_relay):
    client.force_login(operator)
    page = client.post(URL, {"name": "Royal Infirmary", "slug": "royal", "admin_email": "it@royal.example"},
                       follow=True)
    html = page.content.decode()
    assert "Royal Infirmary is open at /h/royal/" in html and "has been sent an invitation" not in html
    assert "the email to it@royal.example could not be sent" in html
    page = client.post("/operator/hospitals/royal/invite-admin/", {"email": "it@royal.example"}, follow=True)
    html = page.content.decode()
    assert "has been sent a new invitation" not in html and "the email to it@royal.example could not be sent" in html
    assert "the link in that earlier email no longer works" in html


@pytest.mark.parametrize("fields, sentence", [
    ({"slug": "st-anne"}, "exists already"),
    ({"name": " st  anne's"}, "named St Anne&#x27;s exists already"),
    ({"slug": "St Anne"}, "lower-case letters, digits and dashes"),
    ({"slug": "Royal"}, "lower-case letters, digits and dashes"),
    ({"slug": "-royal"}, "starts with a letter or digit"),
    ({"admin_email": "not-an-address"}, "Enter a valid email address."),
    ({"name": ""}, "Enter the hospital&#x27;s name."),
])
def test_a_refused_hospital_says_why_and_leaves_nothing(client, world, operator, mailoutbox, fields, sentence):
    client.force_login(operator)
    before = Hospital.objects.count()
    response = client.post(URL, {"name": "Royal Infirmary", "slug": "royal", "admin_email": "it@royal.example",
                                 **fields})
    assert response.status_code == 400 and sentence in response.content.decode()
    assert Hospital.objects.count() == before and not Invitation.objects.filter(email="it@royal.example").exists()
    assert mailoutbox == []


def test_until_a_hospital_has_an_admin_the_operator_sees_and_resends_its_invitation(
        client, world, operator, mailoutbox, django_capture_on_commit_callbacks):
    client.force_login(operator)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(URL, {"name": "Royal Infirmary", "slug": "royal", "admin_email": "it@royal.example"})
    first = Invitation.objects.get(hospital__slug="royal")
    html = client.get(URL).content.decode()
    row = html.split('<span class="muted">/h/royal/</span>')[1].split("</tr>")[0]
    assert "Invited: it@royal.example, until" in row and 'action="/operator/hospitals/royal/invite-admin/"' in row
    assert 'action="/operator/hospitals/st-anne/invite-admin/"' not in html  # St Anne's has its admin

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/operator/hospitals/royal/invite-admin/", {"email": "head.it@royal.example"},
                               follow=True)
    assert "head.it@royal.example has been sent a new invitation" in response.content.decode()
    [again] = Invitation.objects.filter(hospital__slug="royal", accepted_at__isnull=True)  # the first one is gone
    assert again.email == "head.it@royal.example" and again.role == Role.ADMIN and again.pk != first.pk
    assert mailoutbox[-1].to == ["head.it@royal.example"]
    # The first invitation, to another address, went: the hospital's trail says so and by what.
    [replaced] = AuditEvent.objects.filter(hospital_id=first.hospital_id, action="invitation.replace")
    assert replaced.object_id == str(first.pk) and replaced.detail == f"by invitation {again.pk}"
    assert replaced.actor_id == operator.pk


def test_a_hospital_with_an_admin_gets_no_first_admin_from_the_operator(client, world, operator):
    client.force_login(operator)
    response = client.post("/operator/hospitals/st-anne/invite-admin/", {"email": "x@st-anne.example"}, follow=True)
    assert "has an admin already" in response.content.decode()
    assert not Invitation.objects.filter(email="x@st-anne.example").exists()
    client.force_login(world.admin_a)
    assert client.post("/operator/hospitals/st-anne/invite-admin/", {"email": "x@st-anne.example"}).status_code == 404


def test_a_hospital_whose_only_admin_is_deactivated_gets_a_first_admin_from_the_operator(
        client, world, operator, mailoutbox, django_capture_on_commit_callbacks):
    """The admin left and their account was deactivated: nobody can manage the hospital any more, so the
    operator is offered, and may send, a first admin's invitation as for a hospital that never had one."""
    world.admin_a.is_active = False
    world.admin_a.save(update_fields=["is_active"])
    client.force_login(operator)
    html = client.get(URL).content.decode()
    row = html.split('<span class="muted">/h/st-anne/</span>')[1].split("</tr>")[0]
    assert '<td data-label="Admins">1</td>' in row and "deactivated" in row
    assert 'action="/operator/hospitals/st-anne/invite-admin/"' in row and "Has an admin" not in row
    assert 'action="/operator/hospitals/north-general/invite-admin/"' not in html

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/operator/hospitals/st-anne/invite-admin/", {"email": "head.it@st-anne.example"},
                               follow=True)

    assert "head.it@st-anne.example has been sent a new invitation" in response.content.decode()
    invitation = Invitation.objects.get(hospital=world.a, email="head.it@st-anne.example")
    assert invitation.role == Role.ADMIN and mailoutbox[-1].to == ["head.it@st-anne.example"]
    row = client.get(URL).content.decode().split('<span class="muted">/h/st-anne/</span>')[1].split("</tr>")[0]
    assert "Invited: head.it@st-anne.example, until" in row


def test_the_operator_is_not_told_who_belongs_to_a_hospital(client, world, operator):
    """Refused as a first admin, a member's address and any other refused address read the same: who
    belongs to a hospital is the hospital's to know (DESIGN §2)."""
    world.admin_a.is_active = False
    world.admin_a.save(update_fields=["is_active"])
    client.force_login(operator)
    page = client.post("/operator/hospitals/st-anne/invite-admin/", {"email": world.patient_a.email}, follow=True)
    html = page.content.decode()
    assert "This address cannot be invited as the hospital&#x27;s first admin; give another." in html
    assert "member" not in html.split("<main")[1]
    assert not Invitation.objects.filter(hospital=world.a, email=world.patient_a.email).exists()


def test_flash_messages_naming_an_address_stay_on_the_server(client, world, django_capture_on_commit_callbacks):
    """A message such as "x@example.org is now patient" is kept in the session, not sent in a cookie."""
    client.force_login(world.admin_a)
    member = world.a.memberships.get(user=world.doctor_a2)
    client.post(f"/h/st-anne/members/{member.pk}/role/", {"role": "patient"})
    assert "messages" not in client.cookies
