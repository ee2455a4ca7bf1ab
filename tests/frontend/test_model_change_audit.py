"""Every hospital's audit log records when the model that diagnoses its new scans changed (one model
serves them all), whichever way it changed: the operator's versions table, a rollback, a command."""

import pytest
from django.core.management import call_command

from hospitals.models import AuditEvent
from tests.diagnostics.helpers import register_classifier

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(tmp_path):
    from diagnostics import registry

    made = [register_classifier(tmp_path, name, {"accuracy": 0.91, "macro_f1": 0.9}) for name in ("v1", "v2")]
    registry.promote_model_version(made[0])
    return made


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator@neurofed.example", "operator@neurofed.example",
                                                      "operator-password-1")


def test_a_promotion_from_the_versions_table_is_in_every_hospitals_log(client, world, versions, operator):
    v1, v2 = versions
    client.force_login(operator)
    client.post(f"/operator/models/{v2.pk}/promote/", {"next": "/operator/federation/"})

    events = AuditEvent.objects.filter(action="model.promote", object_id=str(v2.pk))
    assert {event.hospital_id for event in events} == {None, world.a.pk, world.b.pk}
    assert {(event.actor_id, event.detail) for event in events} == {(operator.pk, "classification v2, replacing v1")}
    # Each hospital's admin reads it in their own log, in words.
    for admin, slug in ((world.admin_a, "st-anne"), (world.admin_b, "north-general")):
        client.force_login(admin)
        page = client.get(f"/h/{slug}/audit/").content.decode()
        assert "Model put in service" in page and "classification v2, replacing v1" in page


def test_a_rollback_and_the_commands_are_recorded_for_every_hospital_too(client, world, versions, operator):
    v1, v2 = versions
    call_command("promote_model", "--task", "classify", "--model-version", "v2")
    client.force_login(operator)
    client.post("/operator/models/classify/rollback/", {"next": "/operator/federation/"})

    promoted = AuditEvent.objects.filter(action="model.promote", object_id=str(v2.pk))
    assert {event.hospital_id for event in promoted} == {None, world.a.pk, world.b.pk}
    assert {event.actor_id for event in promoted} == {None}  # a command: the platform itself
    rolled_back = AuditEvent.objects.filter(action="model.rollback")
    assert {event.hospital_id for event in rolled_back} == {None, world.a.pk, world.b.pk}
    assert {(event.object_id, event.detail) for event in rolled_back} == {(str(v1.pk), "classification v1, replacing v2")}
    client.force_login(world.admin_b)
    assert "Model rolled back" in client.get("/h/north-general/audit/").content.decode()


def test_promoting_the_version_already_in_service_records_nothing(versions):
    from diagnostics import registry

    before = AuditEvent.objects.count()
    registry.promote_model_version(versions[0])
    assert AuditEvent.objects.count() == before
