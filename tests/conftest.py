"""Shared fixtures: two hospitals and the owner / colleague / outsider of every access test."""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from hospitals.models import Role
from tests.factories import make_hospital, make_member

# TensorFlow's oneDNN kernels are compiled at run time for the host's instruction set (AVX2, AVX-512,
# AMX), so the same test takes different code on different CI hosts; an intermittent abort inside a
# convolution gradient was seen in CI and did not reproduce in repeated runs on an AVX2-only host
# (the faulting host's instruction set is not known). The model tests check
# our code, not oneDNN's: they run on TensorFlow's own (Eigen) kernels, the same on every host. Set
# before TensorFlow is first imported (by a test module); the worker and Flower processes the tests
# start inherit it.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def pytest_runtest_logstart(nodeid, location):
    """Note which test is running, so that `make test` can name it if a native crash kills pytest.

    TensorFlow and LiteRT run inside this process; an abort in their C++ code ends pytest with a signal
    and no report, and faulthandler's stack scrolls out of a CI log's tail.
    """
    progress = os.environ.get("NEUROFED_TEST_PROGRESS_FILE")
    if progress:
        Path(progress).write_text(nodeid + "\n")


@pytest.fixture
def forget_sign_in_brakes(db):
    """Lift the sign-in brake and the reset-mail limit after the test, for every account it made, for
    `forget_sign_in_brakes.emails` and `.addresses` besides, and for the test client's address: their
    counters live in the shared cache (Redis) and would outlive the test database."""
    from django.contrib.auth import get_user_model

    from hospitals import throttle

    extra = SimpleNamespace(emails=[], addresses=[])
    yield extra
    for email in [*get_user_model().objects.values_list("email", flat=True), *extra.emails]:
        throttle.forget(email=email)
    for address in ("127.0.0.1", *extra.addresses):
        throttle.forget(address=address)


@pytest.fixture(autouse=True)
def _api_errors_are_documented(monkeypatch):
    """Every error answer an API test receives must be documented for its operation in the OpenAPI
    schema (neurofed.api_schema), in the error body's shape: /api/docs/ tells integrators which statuses
    to handle, and only the tests see every refusal the code can give."""
    from django.test import Client

    from tests.api_schema_check import check_error_is_documented

    request = Client.request

    def checked(self, **environ):
        response = request(self, **environ)
        check_error_is_documented(environ, response)
        return response

    monkeypatch.setattr(Client, "request", checked)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _mail_sent_in_the_request(settings):
    """Tests read mail.outbox as soon as a response returns; tests/frontend/test_password_reset_timing.py
    turns the sending after the response back on."""
    settings.MAIL_AFTER_RESPONSE = False


@pytest.fixture(autouse=True)
def _small_federations(settings):
    """Tests seed a handful of reviewed cases per hospital, far below a node's production minimum
    (federation.conf.min_node_cases); the tests of that minimum raise it again."""
    settings.FEDERATION_MIN_NODE_CASES = 1


@pytest.fixture
def world(db):
    """Hospital A with an admin, two doctors and two patients; hospital B with its own admin, doctor, patient.

    `owner` is patient A1 (owns their scans), `colleague` is doctor A1, `outsider` is B's doctor.
    """
    a = make_hospital("st-anne", "St Anne's")
    b = make_hospital("north-general", "North General")
    w = SimpleNamespace(a=a, b=b)
    w.admin_a = make_member(a, Role.ADMIN, "admin@st-anne.example")
    w.doctor_a = make_member(a, Role.DOCTOR, "doctor1@st-anne.example")
    w.doctor_a2 = make_member(a, Role.DOCTOR, "doctor2@st-anne.example")
    w.patient_a = make_member(a, Role.PATIENT, "patient1@st-anne.example")
    w.patient_a2 = make_member(a, Role.PATIENT, "patient2@st-anne.example")
    w.admin_b = make_member(b, Role.ADMIN, "admin@north.example")
    w.doctor_b = make_member(b, Role.DOCTOR, "doctor@north.example")
    w.patient_b = make_member(b, Role.PATIENT, "patient@north.example")
    w.owner, w.colleague, w.outsider = w.patient_a, w.doctor_a, w.doctor_b
    return w


@pytest.fixture
def api():
    """An API client factory: api(user) is authenticated as that user, api() is anonymous."""

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


DEAD_REDIS = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there


@pytest.fixture
def unreachable_mail_relay(settings):
    """SMTP to a port where nothing listens: every mail fails as it does when the hospital's relay is down."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2


@pytest.fixture
def broker_down():
    """The Celery broker unreachable (nothing listens on its port), its cached connections dropped."""
    from neurofed.celery import app

    saved = app.conf.broker_url, app.conf.broker_write_url

    def point_at(url, write_url):
        app.conf.broker_url, app.conf.broker_write_url = url, write_url
        app._pool = None
        app.amqp._producer_pool = None

    point_at(DEAD_REDIS, DEAD_REDIS)
    yield
    point_at(*saved)

