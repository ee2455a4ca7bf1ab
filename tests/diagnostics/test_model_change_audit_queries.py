"""A model promotion or rollback is written into every hospital's audit log in a few queries, however
many hospitals there are: the writes happen inside the transaction that holds the versions' row locks.
Each row is as hospitals.audit.record_audit would write it: an operator by their sign-in name, a
patient by account id only."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from diagnostics import registry
from hospitals.models import AuditEvent, Role
from tests.diagnostics.helpers import register_classifier
from tests.factories import make_hospital

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(tmp_path):
    made = [register_classifier(tmp_path, name, {"accuracy": 0.91, "macro_f1": 0.9}) for name in ("v1", "v2", "v3")]
    registry.promote_model_version(made[0])
    return made


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("operator@neurofed.example", "operator@neurofed.example",
                                                      "operator-password-1")


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
