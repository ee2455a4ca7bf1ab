"""promote_model: what it refuses before the registry is touched.

Registering, promoting and the score check are in test_registry.py."""
import json

import pytest
from django.core.management import CommandError, call_command

from diagnostics.models.registry import ModelVersion

pytestmark = pytest.mark.django_db


def test_a_version_or_run_id_longer_than_the_registry_keeps_is_refused_before_any_query(
        tmp_path, django_assert_num_queries):
    bundle = tmp_path / "classifier.json"
    bundle.write_text(json.dumps({"task": "classify"}))
    for extra, message in (
            (["--model-version", "v" * 65], "--model-version is 65 characters long; the registry keeps at most 64"),
            (["--model-version", "fed-7", "--source", "federated", "--run-id", "7" * 65],
             "--run-id is 65 characters long; the registry keeps at most 64")):
        with django_assert_num_queries(0), pytest.raises(CommandError, match=message):
            call_command("promote_model", "--task", "classify", "--register", str(bundle), *extra)
    assert not ModelVersion.objects.exists()
