"""Every hospital's audit log records when the model that diagnoses its new scans changed (one model
serves them all), whichever way it changed: the operator's versions table, a rollback, a command."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from diagnostics import registry
from hospitals.models import AuditEvent, Role
from tests.diagnostics.helpers import register_classifier
from tests.factories import make_hospital

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(tmp_path):
    """Three registered classifier versions: v1 in service, v2 and v3 candidates."""
    made = [register_classifier(tmp_path, name, {"accuracy": 0.91, "macro_f1": 0.9}) for name in ("v1", "v2", "v3")]
    registry.promote_model_version(made[0])
    return made


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator@neurofed.example", "operator@neurofed.example",
                                                      "operator-password-1")


def test_a_promotion_from_the_versions_table_is_in_every_hospitals_log(client, world, versions, operator):
    v1, v2, _v3 = versions
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
    v1, v2, _v3 = versions
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
    before = AuditEvent.objects.count()
    registry.promote_model_version(versions[0])
    assert AuditEvent.objects.count() == before


# The rows are written inside the transaction that holds the versions' row locks: in a few queries
# however many hospitals there are, each as hospitals.audit.record_audit would write it.
def queries_to_promote(version, operator) -> int:
    with CaptureQueriesContext(connection) as queries:
        registry.promote_model_version(version, actor=operator)
    return len(queries)


def test_the_queries_do_not_grow_with_the_number_of_hospitals(world, versions, operator):
    _v1, v2, v3 = versions
    few = queries_to_promote(v2, operator)
    for _ in range(8):
        make_hospital()
    many = queries_to_promote(v3, operator)

    assert many == few, (few, many)
    assert AuditEvent.objects.filter(action="model.promote", object_id=str(v3.pk)).count() == 1 + 10
    with CaptureQueriesContext(connection) as queries:
        registry.rollback_model("classify", actor=operator)
    assert len(queries) <= few + 2


def test_each_row_reads_as_record_audit_writes_it(world, versions, operator):
    _v1, v2, _v3 = versions
    operator.memberships.create(hospital=world.a, role=Role.PATIENT)

    registry.promote_model_version(v2, actor=operator)
    registry.promote_model_version(versions[2], actor=None)

    by_hospital = {e.hospital_id: e for e in AuditEvent.objects.filter(action="model.promote", object_id=str(v2.pk))}
    assert set(by_hospital) == {None, world.a.pk, world.b.pk}
    assert by_hospital[world.a.pk].actor_label == ""  # a patient there: kept by account id only
    assert by_hospital[world.b.pk].actor_label == by_hospital[None].actor_label == operator.get_username()
    assert {e.actor_id for e in by_hospital.values()} == {operator.pk}
    assert {e.object_type for e in by_hospital.values()} == {"modelversion"}
    system = AuditEvent.objects.filter(action="model.promote", object_id=str(versions[2].pk))
    assert {(e.actor_id, e.actor_label) for e in system} == {(None, "")}
