"""benchmark_pipeline: what it refuses before it writes anything (the run itself: test_pipeline_worker.py)."""

import socket

import pytest
from django.core.management import CommandError, call_command

from hospitals.api_tokens import issue_token, token_digest
from hospitals.models import ApiToken, Patient

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again on leaving: nothing listens there


@pytest.mark.parametrize("options, message", [
    ({"count": 0}, "--count and --concurrency must be at least 1, and --timeout above 0"),
    ({"concurrency": -2}, "--count and --concurrency must be at least 1"),
    ({"hospital": "nowhere"}, "No hospital with the slug 'nowhere'"),
    ({"doctor": "patient1@st-anne.example"}, "--doctor must name a doctor or admin of st-anne"),
    ({"url": "127.0.0.1:8000"}, "must start with http:// or https://"),
    ({"url": None}, r"no NeuroFed server answers at http://127\.0\.0\.1:\d+ .*; start one, or give its --url"),
])
def test_what_cannot_work_is_refused_before_a_patient_or_a_token_is_made(world, options, message):
    given = {"url": f"http://127.0.0.1:{_closed_port()}", "hospital": "st-anne", "doctor": world.doctor_a.email,
             **{key: value for key, value in options.items() if value is not None}}
    patients = Patient.objects.count()
    with pytest.raises(CommandError, match=message):
        call_command("benchmark_pipeline", **given)
    assert Patient.objects.count() == patients and not ApiToken.objects.exists()


@pytest.fixture
def answering_server():
    """Something that answers /healthz, as a NeuroFed server does; the benchmark itself is stopped before
    it uploads (the whole run is in test_pipeline_worker.py)."""
    import http.server
    import threading

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("had_token", [False, True])
def test_the_token_it_made_is_taken_back_and_a_doctors_own_is_kept(world, answering_server, monkeypatch, had_token):
    from diagnostics.management.commands import benchmark_pipeline

    own = issue_token(world.doctor_a)[0].digest if had_token else None

    def stopped(self, options, hospital, user, patient, token, base, images):
        # It uploads with a token of the doctor's account, one of its own.
        assert ApiToken.objects.get(digest=token_digest(token)).user == user and token_digest(token) != own
        raise CommandError("stopped before uploading")

    monkeypatch.setattr(benchmark_pipeline.Command, "_run", stopped)
    with pytest.raises(CommandError, match="stopped before uploading"):
        call_command("benchmark_pipeline", url=answering_server, hospital="st-anne", doctor=world.doctor_a.email)
    assert list(ApiToken.objects.filter(user=world.doctor_a).values_list("digest", flat=True)) == ([own] if own else [])
