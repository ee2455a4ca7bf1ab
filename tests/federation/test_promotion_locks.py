"""A run's model promoted while the operator promotes another version: both lock the task's versions in one
order (diagnostics.registry.lock_task), so neither deadlocks and one of them serves."""

import shutil
import threading
import time

import pytest
from django.db import connections

from diagnostics import registry
from diagnostics.models.registry import ModelStatus, ModelVersion
from federation import services
from federation.models import FederatedRun, RunStatus
from tests.diagnostics.ml.helpers import requires_data, shared_tiny_bundle

pytestmark = [requires_data, pytest.mark.django_db(transaction=True)]


def test_a_federated_promotion_and_another_at_once_do_not_deadlock(tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    shutil.copytree(shared_tiny_bundle(), bundle)

    def register(version):
        return registry.register_model_version(task="classify", version=version,
                                               artifact_path=str(bundle / "classifier.json"))

    registry.promote_model_version(register("C"))
    plain = register("P")  # the lower id: the first row a task lock takes
    candidate = register("F")
    run = FederatedRun.objects.create(status=RunStatus.COMPLETED, num_rounds=2, model_version_id=str(candidate.pk))
    lock, both_ready, first_call = registry.lock_task, threading.Barrier(2), threading.local()

    def lock_together(task):
        if not getattr(first_call, "done", False):
            first_call.done = True
            both_ready.wait(10)
            if threading.current_thread().name == "run":
                time.sleep(0.5)  # the operator's promotion takes its locks first
        return lock(task)

    monkeypatch.setattr(registry, "lock_task", lock_together)
    errors = {}

    def promote(name, promotion):
        try:
            promotion()
        except Exception as error:  # noqa: BLE001 - the test reports whatever escaped
            errors[name] = repr(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(name="run", target=promote, args=("run", lambda: services.promote_federated_model(
                   run=run, accept_lower_score=True))),
               threading.Thread(name="operator", target=promote, args=("operator", lambda: registry.promote_model_version(
                   plain, accept_lower_score=True)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == {}
    # The run's promotion waited for the operator's and went second.
    assert ModelVersion.objects.get(task="classify", status=ModelStatus.ACTIVE).version == "F"
