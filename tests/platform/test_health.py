"""/healthz and /readyz: what a load balancer and the hospital's IT staff read, against the real services.

Both are anonymous; every test also checks that the answer gives a stranger nothing (no URL, host or
path), since a failing dependency's exception message often names them.
"""

import base64
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from diagnostics import registry
from diagnostics.models.registry import ModelTask
from tests.conftest import DEAD_REDIS

ROOT = Path(__file__).resolve().parents[2]


def needs_services():
    if not django_settings.REDIS_URL or not django_settings.CELERY_BROKER_URL:
        pytest.skip("readiness against real services needs REDIS_URL (cache, channel layer and broker)")


@pytest.fixture
def model_dir(settings, tmp_path):
    """A copy of the committed bundles, as MODEL_DIR, so a test may break its files."""
    directory = tmp_path / "models"
    shutil.copytree(django_settings.MODEL_DIR, directory)
    settings.MODEL_DIR = directory
    return directory


@pytest.fixture
def active_models(db, model_dir):
    """The committed classifier and segmenter, registered and promoted through the registry."""
    versions = {}
    for task, bundle in registry.BUNDLE_NAMES.items():
        version = registry.register_model_version(task=task, version=f"health-{task}", artifact_path=bundle)
        versions[task] = registry.promote_model_version(version)
    return versions


def assert_reveals_nothing(response):
    text = response.content.decode()
    for secret in ("redis://", "postgres", "127.0.0.1", ":9", str(django_settings.MODEL_DIR), "/tmp", ".json",
                   "tensorflow", "django"):
        assert secret not in text.lower(), f"{secret!r} in {text}"


def statuses(response):
    return {name: check["status"] for name, check in response.json()["checks"].items()}


# --- liveness -------------------------------------------------------------------------------------------

def test_liveness_answers_ok_without_a_query(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_liveness_answers_where_the_database_may_not_be_touched(client):
    # No db fixture: pytest-django raises on any database access, as an outage would.
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.head("/healthz").status_code == 200


def test_health_endpoints_refuse_other_methods_in_words(client):
    for path in ("/healthz", "/readyz"):
        response = client.post(path)
        assert response.status_code == 405
        assert response.json()["error"] == "method_not_allowed"
        assert response["Allow"] == "GET, HEAD"


# --- readiness ------------------------------------------------------------------------------------------

def test_readiness_with_every_service_up_is_200_and_names_the_model_versions(client, active_models):
    needs_services()
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert statuses(response) == {"database": "ok", "cache_and_channel_layer": "ok", "broker": "ok", "models": "ok",
                                  "input_gate": "ok", "master_key": "ok", "field_key": "ok"}
    assert body["checks"]["models"]["versions"] == {"classify": "health-classify", "segment": "health-segment"}
    assert "no-cache" in response["Cache-Control"]
    assert_reveals_nothing(response)


def test_a_dead_broker_makes_readiness_503_naming_the_broker_alone(client, active_models, broker_down, caplog):
    needs_services()
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < django_settings.SERVICE_TIMEOUT_S  # one attempt, no retry sleeps
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert statuses(response) == {"database": "ok", "cache_and_channel_layer": "ok", "broker": "failing",
                                  "models": "ok", "input_gate": "ok", "master_key": "ok", "field_key": "ok"}
    broker = body["checks"]["broker"]
    assert broker["error"] == "OperationalError"
    assert broker["detail"] == "The task broker did not answer."
    assert_reveals_nothing(response)
    assert "readiness: broker failing: OperationalError" in caplog.text  # IT staff get the cause in the log


def test_a_dead_redis_makes_the_cache_check_fail(client, settings, active_models):
    needs_services()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD_REDIS,
                                   "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["cache_and_channel_layer"]
    assert check["status"] == "failing" and check["error"] == "ConnectionError"
    assert statuses(response)["database"] == "ok" and statuses(response)["models"] == "ok"
    assert_reveals_nothing(response)


def test_readiness_without_an_active_model_is_503_naming_the_models(client, db, model_dir):
    needs_services()
    # A candidate is not enough: only the active version serves analyses.
    registry.register_model_version(task=ModelTask.CLASSIFY, version="candidate-only", artifact_path="classifier.json")
    response = client.get("/readyz")
    assert response.status_code == 503
    models = response.json()["checks"]["models"]
    assert models["status"] == "failing" and models["error"] == "no_active_model"
    assert "classify" in models["detail"]
    assert {name for name, status in statuses(response).items() if status == "failing"} == {"models"}
    # The probe only reads: registering the baseline is the worker's job.
    assert not registry.ModelVersion.objects.filter(status="active").exists()


def test_readiness_without_the_segmenter_is_503(client, db, model_dir):
    needs_services()
    version = registry.register_model_version(task=ModelTask.CLASSIFY, version="c1", artifact_path="classifier.json")
    registry.promote_model_version(version)
    (model_dir / "segmenter.json").unlink()  # and no committed one for the worker to register
    models = client.get("/readyz").json()["checks"]["models"]
    assert models["error"] == "no_active_model" and "segment" in models["detail"]


def test_a_fresh_installation_is_ready_before_its_worker_registers_the_committed_models(client, db, model_dir):
    """Only the worker's first analysis registers the committed bundles; the web process (perhaps on another
    host, started first) must not be kept out of the load balancer until then."""
    needs_services()
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert set(response.json()["checks"]["models"]["versions"]) == {"classify", "segment"}
    assert not registry.ModelVersion.objects.exists()  # the probe only reads
    (model_dir / "segmenter.tflite").write_bytes(b"")
    models = client.get("/readyz").json()["checks"]["models"]
    assert models["error"] == "model_files_missing" and "segment" in models["detail"]


def test_a_master_key_that_wraps_no_hospitals_data_key_makes_readiness_503(client, active_models, settings, world,
                                                                              caplog):
    """A key that decodes but is not the one the hospitals' data keys were wrapped with (a restore with
    another key set) would fail every upload and scan read."""
    needs_services()
    assert client.get("/readyz").json()["checks"]["master_key"]["status"] == "ok"
    settings.MASTER_KEY, settings.MASTER_KEY_FILE = base64.b64encode(secrets.token_bytes(32)).decode(), ""
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["master_key"]
    assert check["error"] == "master_key_wrong" and world.a.slug not in response.content.decode()
    assert f"{world.a.slug} (master key {world.a.master_key_id})" in caplog.text
    assert_reveals_nothing(response)


def test_a_field_key_that_does_not_open_the_stored_records_makes_readiness_503(client, active_models, world):
    """The field library shows a value it cannot decrypt as the ciphertext itself, and an edit would store
    that encrypted again: a wrong FIELD_ENCRYPTION_KEY must keep the process out of service."""
    from django.db import connection

    from hospitals.models import Patient

    needs_services()
    assert client.get("/readyz").json()["checks"]["field_key"]["status"] == "ok"
    written_elsewhere = Fernet(Fernet.generate_key()).encrypt(b"Ada Lovelace").decode()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Patient._meta.db_table} SET full_name = %s", [written_elsewhere])
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["field_key"]
    assert check["error"] == "field_key_wrong" and "FIELD_ENCRYPTION_KEY" in check["detail"]
    assert_reveals_nothing(response)


def test_a_field_key_list_that_lost_the_older_key_is_found_though_the_newest_record_opens(client, active_models,
                                                                                          world):
    """A rotation's previous key dropped by mistake: records written since open, the older ones do not."""
    from django.db import connection

    from hospitals.models import Patient
    from tests.factories import make_patient

    needs_services()
    oldest = Patient.objects.order_by("created_at").first()
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Patient._meta.db_table} SET full_name = %s WHERE id = %s",
                       [Fernet(Fernet.generate_key()).encrypt(b"Ada Lovelace").decode(), oldest.pk])
    make_patient(world.a, "Grace Hopper")  # the newest, written under the key configured now
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["field_key"]["error"] == "field_key_wrong"


def test_a_missing_input_gate_makes_readiness_503_and_uploads_refused_with_a_sentence(client, active_models, settings,
                                                                                     tmp_path, world, api):
    settings.INPUT_GATE_PATH = tmp_path / "no-gate.json"
    response = client.get("/readyz")
    assert response.status_code == 503
    gate = response.json()["checks"]["input_gate"]
    assert gate["status"] == "failing" and gate["error"] == "input_gate_missing"
    assert str(tmp_path) not in response.content.decode()  # no path leaks to a stranger
    from diagnostics.models import Scan
    from tests.diagnostics.helpers import upload
    from tests.diagnostics.samples import jpeg_bytes

    refused = upload(api(world.owner), world.a, jpeg_bytes("glioma", 1))
    assert refused.status_code == 503 and refused.json()["error"] == "gate_unavailable"
    assert "Try again later" in refused.json()["detail"] and not Scan.objects.exists()


@pytest.mark.parametrize("damage", ["delete", "truncate", "delete_bundle"])
def test_an_active_model_with_missing_or_empty_files_is_not_ready(client, active_models, model_dir, damage):
    needs_services()
    target = model_dir / ("segmenter.json" if damage == "delete_bundle" else "segmenter.tflite")
    if damage == "truncate":
        target.write_bytes(b"")
    else:
        target.unlink()
    response = client.get("/readyz")
    assert response.status_code == 503
    models = response.json()["checks"]["models"]
    assert models["error"] == "model_files_missing"
    assert models["detail"] == "The active segment model health-segment's files are missing or empty."
    assert_reveals_nothing(response)


def test_embedded_mode_has_no_broker_to_check(client, settings, active_models):
    settings.CELERY_BROKER_URL = ""
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["broker"] == {
        "status": "not used", "detail": "Embedded mode: analyses run in the web process, with no broker."}


# --- behind HTTPS ---------------------------------------------------------------------------------------

def test_probes_over_plain_http_are_not_redirected_to_https(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/accounts/login/").status_code == 301  # every other page still goes to HTTPS
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)


def test_production_settings_answer_liveness_over_plain_http(tmp_path):
    """DEBUG off, as deployed: the redirect exemption is in the settings the process really loads."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "FIELD_ENCRYPTION_KEY")}
    env.update(DJANGO_SETTINGS_MODULE="neurofed.settings", NEUROFED_VAR_DIR=str(tmp_path / "var"), DEBUG="0",
               SECRET_KEY=secrets.token_urlsafe(50), FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
               NEUROFED_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode(), ALLOWED_HOSTS="neurofed.example")
    script = ("import django; django.setup(); from django.conf import settings; from django.test import Client; "
              "c = Client(HTTP_HOST='neurofed.example'); by_ip = Client(HTTP_HOST='10.0.0.7:8000'); "
              "print(settings.SECURE_SSL_REDIRECT, c.get('/healthz').status_code, c.get('/accounts/login/').status_code, "
              "by_ip.get('/healthz').status_code, by_ip.get('/accounts/login/').status_code)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    # A load balancer probing the process by its own address is answered; any other page by that
    # address is still refused as a host not allowed.
    assert result.stdout.split() == ["True", "200", "301", "200", "400"]


def test_the_web_process_does_not_load_tensorflow_to_check_models(tmp_path):
    """The readiness probe reads the registry and the bundle's file list; TensorFlow is the worker's."""
    script = ("import sys, django; django.setup(); import neurofed.urls; from neurofed import health; "
              "from diagnostics.models.registry import ModelVersion; "
              "print(health.missing_artifacts(ModelVersion(task='classify', version='v', "
              "artifact_path='classifier.json')), 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="neurofed.settings")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "False", "False"]


@pytest.mark.parametrize("key", [base64.b64encode(secrets.token_bytes(48)).decode(), secrets.token_hex(32), "not base64!"])
def test_a_master_key_that_cannot_be_used_makes_readiness_503(client, active_models, settings, key, caplog):
    # `openssl rand -hex 32` is an easy mistake: it decodes as base64 to 48 bytes. Without this check the
    # process looked ready and failed at the first upload or new hospital.
    needs_services()
    settings.MASTER_KEY, settings.MASTER_KEY_FILE = key, ""
    response = client.get("/readyz")
    assert response.status_code == 503
    check = response.json()["checks"]["master_key"]
    assert check["status"] == "failing" and check["error"] == "master_key_unusable"
    assert "NEUROFED_MASTER_KEY" in check["detail"]
    assert key not in response.content.decode() and key not in caplog.text
    assert_reveals_nothing(response)
