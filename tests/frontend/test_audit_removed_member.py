"""The audit log names a removed member by their email on every event about them, the removal included,
instead of the id of a membership that no longer exists."""

import re

import pytest

from hospitals.models import Membership

pytestmark = pytest.mark.django_db


def _object_cells(html, action):
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [re.search(r'data-label="Object">(.*?)</td>', row, re.S).group(1) for row in rows if f">{action}<" in row]


def test_a_removed_members_events_still_name_them(client, world):
    member = Membership.objects.get(hospital=world.a, user=world.doctor_a2)
    client.force_login(world.admin_a)
    client.post(f"/h/st-anne/members/{member.pk}/role/", {"role": "admin"})
    client.post(f"/h/st-anne/members/{member.pk}/remove/")
    assert not Membership.objects.filter(pk=member.pk).exists()
    html = client.get("/h/st-anne/audit/").content.decode()
    named = 'Member <span class="muted">doctor2@st-anne.example</span>'
    assert _object_cells(html, "Member removed") == [named]
    assert _object_cells(html, "Role changed") == [named]
    assert f'<span class="muted">{member.pk}</span>' not in html



def test_a_patient_member_is_named_by_their_record_not_their_email(client, world):
    from hospitals.models import Patient

    member = Membership.objects.get(hospital=world.a, user=world.patient_a2)
    record = Patient.objects.get(hospital=world.a, user=world.patient_a2)
    client.force_login(world.admin_a)
    client.post(f"/h/st-anne/members/{member.pk}/remove/", follow=True)  # its message names them to the admin
    html = client.get("/h/st-anne/audit/").content.decode()
    assert _object_cells(html, "Member removed") == [f'Member <span class="muted">patient {str(record.pk)[:8]}…</span>']
    assert "patient2@st-anne.example" not in html
