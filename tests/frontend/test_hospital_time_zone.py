"""A hospital's time zone (its settings page): its pages and its invitation mails give times on its
clock; another hospital's pages, and the operator's, keep the deployment's zone."""

import re
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.utils import timezone
from django.utils.formats import date_format

from hospitals.audit import record_audit
from hospitals.models import AuditEvent

pytestmark = pytest.mark.django_db

KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30 all year: no summer time to make the test depend on the date


def test_the_settings_page_offers_the_zones_and_saves_the_one_chosen(client, world):
    client.force_login(world.admin_a)
    page = client.get("/h/st-anne/settings/").content.decode()
    assert '<option value="" selected>The platform\'s zone (UTC)</option>' in page
    assert "<option>Asia/Kolkata</option>" in page

    client.post("/h/st-anne/settings/", {"patients_see_ai_results": "after_review", "time_zone": "Asia/Kolkata"})

    world.a.refresh_from_db()
    assert world.a.time_zone == "Asia/Kolkata"
    assert "<option selected>Asia/Kolkata</option>" in client.get("/h/st-anne/settings/").content.decode()


def test_a_zone_not_on_the_list_is_refused_beside_its_field_and_nothing_is_saved(client, world):
    client.force_login(world.admin_a)
    response = client.post("/h/st-anne/settings/", {"patients_see_ai_results": "immediately",
                                                     "time_zone": "Europe/Atlantis"})
    page = response.content.decode()
    assert response.status_code == 400
    assert re.search(r'id="time-zone-error"><li>Choose a time zone from the list', page)
    world.a.refresh_from_db()
    assert (world.a.time_zone, world.a.patients_see_ai_results) == ("", "after_review")


def test_the_hospitals_pages_give_times_on_its_clock_and_others_keep_the_platforms(client, world):
    world.a.time_zone = "Asia/Kolkata"
    world.a.save()
    record_audit(actor=world.admin_a, hospital=world.a, action="hospital.settings_update", obj=world.a,
                 detail="time_zone=Asia/Kolkata")
    event = AuditEvent.objects.get(action="hospital.settings_update")
    on_its_clock = date_format(timezone.localtime(event.at, KOLKATA), "j M Y, H:i:s")
    in_utc = date_format(timezone.localtime(event.at, ZoneInfo("UTC")), "j M Y, H:i:s")
    assert on_its_clock != in_utc

    client.force_login(world.admin_a)
    page = client.get("/h/st-anne/audit/").content.decode()
    assert f">{on_its_clock}</time>" in page and in_utc not in page
    assert 'data-time-zone="Asia/Kolkata"' in page and "Times are in Asia/Kolkata." in page
    # The same person at another hospital, or anyone at one without a zone of its own: the platform's.
    client.force_login(world.admin_b)
    page = client.get("/h/north-general/audit/").content.decode()
    assert 'data-time-zone="UTC"' in page and "Times are in UTC." in page


def test_an_invitation_mail_and_its_page_give_the_expiry_on_the_hospitals_clock(
        client, world, django_capture_on_commit_callbacks):
    world.a.time_zone = "Asia/Kolkata"
    world.a.save()
    client.force_login(world.admin_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/h/st-anne/members/", {"email": "new.doctor@st-anne.example", "role": "doctor"})

    invitation = world.a.invitations.get(email="new.doctor@st-anne.example")
    expires = timezone.localtime(invitation.expires_at, KOLKATA)
    assert f"expires at {expires:%Y-%m-%d %H:%M} (Asia/Kolkata)" in mail.outbox[-1].body
    token = re.search(r"invitation token: (\S+)", mail.outbox[-1].body).group(1)
    client.logout()
    page = client.get(f"/invite/{token}/", follow=True).content.decode()
    assert f"works until {date_format(expires, 'j M Y, H:i')} IST" in page


def test_a_zone_this_machine_no_longer_knows_falls_back_to_the_platforms_and_the_pages_open(client, world):
    from hospitals.models import Hospital

    Hospital.objects.filter(pk=world.a.pk).update(time_zone="Europe/Gone_Since_An_Update")
    client.force_login(world.admin_a)
    response = client.get("/h/st-anne/audit/")
    assert response.status_code == 200 and "Times are in UTC." in response.content.decode()


def test_patient_mails_give_the_upload_date_on_the_hospitals_clock_whichever_way_they_are_sent(
        world, api, django_capture_on_commit_callbacks):
    from datetime import datetime
    from datetime import timezone as dt_timezone

    from diagnostics.models import Scan
    from tests.diagnostics.helpers import finish, upload
    from tests.diagnostics.samples import jpeg_bytes

    world.a.time_zone = "Asia/Kolkata"
    world.a.save()
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, jpeg_bytes("glioma", 1)).json()["id"])
    # 20:00 on 6 December in UTC is 01:30 on 7 December in Kolkata.
    Scan.objects.filter(pk=scan.pk).update(created_at=datetime(2026, 12, 6, 20, 0, tzinfo=dt_timezone.utc))
    finish(scan, "glioma", 0.8)
    detail = f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/"
    with django_capture_on_commit_callbacks(execute=True):
        api(world.doctor_a).post(f"{detail}review/", {"label": "glioma"}, format="json")
    assert "the scan you uploaded on 7 December 2026." in mail.outbox[-1].body
    with django_capture_on_commit_callbacks(execute=True):
        assert api(world.admin_a).delete(detail, {"reason": "uploaded in error"}, format="json").status_code == 204
    assert "the scan you uploaded on 7 December 2026 at 01:30:00" in mail.outbox[-1].body
